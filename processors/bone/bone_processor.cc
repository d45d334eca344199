// The "bone-density" processor: vertebral trabecular attenuation per level (bone_density.h) with its
// SEG segments (bodies and ROIs, SNOMED CT code per vertebra), TID 1500 groups (one per level),
// key views (sagittal through the canal, axial through the key level's ROI) and report sections.
#include <cmath>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/format.h"
#include "processors/bone/bone_density.h"
#include "processors/builtin.h"

namespace procnode {
namespace {

// SNOMED CT vertebra codes (DICOM's anatomic master list, as used for vertebrae in SEG).
const std::map<std::string, Code>& VertebraCodes() {
  static const std::map<std::string, Code> codes{
      {"T1", {"64864005", "SCT", "T1 vertebra"}},   {"T2", {"53733008", "SCT", "T2 vertebra"}},
      {"T3", {"1626008", "SCT", "T3 vertebra"}},    {"T4", {"73071006", "SCT", "T4 vertebra"}},
      {"T5", {"56401006", "SCT", "T5 vertebra"}},   {"T6", {"45296009", "SCT", "T6 vertebra"}},
      {"T7", {"62487009", "SCT", "T7 vertebra"}},   {"T8", {"11068009", "SCT", "T8 vertebra"}},
      {"T9", {"82687006", "SCT", "T9 vertebra"}},   {"T10", {"7610001", "SCT", "T10 vertebra"}},
      {"T11", {"12989004", "SCT", "T11 vertebra"}}, {"T12", {"23215003", "SCT", "T12 vertebra"}},
      {"L1", {"66794005", "SCT", "L1 vertebra"}},   {"L2", {"14293000", "SCT", "L2 vertebra"}},
      {"L3", {"36470004", "SCT", "L3 vertebra"}},   {"L4", {"11994002", "SCT", "L4 vertebra"}},
      {"L5", {"49668003", "SCT", "L5 vertebra"}}};
  return codes;
}

// A body of uncertain level: the vertebral column.
const Code kSpine{"421060004", "SCT", "Spinal column"};

std::string BodyName(const bone::VertebralBody& b, std::size_t index) {
  return b.level.empty() ? "Vertebra " + std::to_string(index + 1) + " (level uncertain)" : b.level;
}

std::vector<ResultSegment> BoneSegments(const bone::BoneResult& r) {
  const Code anatomical{"123037004", "SCT", "Anatomical Structure"};
  const Code hu{"[hnsf'U]", "UCUM", "Hounsfield unit"}, ml{"mL", "UCUM", "milliliter"}, voxels{"{voxels}", "UCUM", "voxels"};
  const Code attenuation{"112031", "DCM", "Attenuation Coefficient"}, volume{"118565006", "SCT", "Volume"};
  const Code mean{"373098007", "SCT", "Mean"}, median{"373099004", "SCT", "Median"}, sd{"386136009", "SCT", "Standard Deviation"};
  std::vector<ResultSegment> segments;
  static const std::array<std::array<int, 3>, 4> kColours{{{70, 130, 255}, {60, 200, 120}, {255, 200, 40}, {230, 110, 200}}};
  for (std::size_t i = 0; i < r.bodies.size(); ++i) {
    const bone::VertebralBody& b = r.bodies[i];
    const auto code = VertebraCodes().find(b.level);
    const Code site = code != VertebraCodes().end() ? code->second : kSpine;
    const std::string name = BodyName(b, i);
    const auto colour = kColours[i % kColours.size()];
    ResultSegment body{.label = name + " body", .category = anatomical, .type = site,
                       .label_values = {static_cast<int>(2 * i + 1), static_cast<int>(2 * i + 2)}, .rgb = colour,
                       .finding = site, .finding_site = site};
    segments.push_back(body);  // measured through its ROI: one SR group per level
    ResultSegment roi{.label = name + " trabecular ROI", .category = anatomical, .type = site,
                      .label_values = {static_cast<int>(2 * i + 2)}, .rgb = {255, 60, 40},
                      .finding = site, .finding_site = site};
    if (!b.excluded) {
      roi.measurements = {{attenuation, b.mean_hu, hu, mean},
                          {attenuation, b.median_hu, hu, median},
                          {attenuation, b.sd_hu, hu, sd},
                          {volume, b.roi_ml, ml, std::nullopt},
                          {{"VOXELS", "99PROCNODE", "Voxel count"}, static_cast<double>(b.roi_voxels), voxels, std::nullopt}};
    }
    segments.push_back(roi);
  }
  return segments;
}

class BoneDensityProcessor : public Processor {
 public:
  BoneDensityProcessor() {
    info_.name = "bone-density";
    info_.version = "1";
    info_.description = "Vertebral trabecular attenuation per level (T1-L5) on routine axial CT: opportunistic osteoporosis "
                        "screening decision support, L1 as the key level";
    info_.report_title = "Vertebral bone density (opportunistic CT)";
    info_.modalities = {"CT"};
    info_.min_slices = 8;
    info_.host_bytes_per_voxel = 10;  // float volume, its smoothed copy, labels, per-slice work
    const bone::BoneParameters d;
    info_.parameters = {
        {"max_slice_mm", "number", d.max_slice_mm, 0.3, 10, {}, "series with slices further apart than this are refused"},
        {"cortical_hu", "number", d.cortical_hu, 150, 600, {},
         "cortical bone threshold: the vertebral shell, the arch and the ribs lie above it"},
        {"slab_mm", "number", d.slab_mm, 1, 20, {}, "thickness of the ROI slab at each body's cranio-caudal middle"},
        {"roi_centre_fraction", "number", d.roi_centre_fraction, 0.3, 0.8, {},
         "ROI centre along the body's anterior-posterior extent, from its posterior edge"},
        {"roi_ap_fraction", "number", d.roi_ap_fraction, 0.1, 0.9, {}, "ROI height as a fraction of the body's anterior-posterior extent"},
        {"roi_width_fraction", "number", d.roi_width_fraction, 0.1, 0.9, {}, "ROI width as a fraction of the body's width"},
        {"erosion_mm", "number", d.erosion_mm, 0, 10, {}, "the ROI keeps this far from the body's edge, so that cortical bone stays out"},
        {"metal_hu", "number", d.metal_hu, 1000, 30000, {},
         "a body holding a voxel above this (metal, cement) is excluded rather than measured"},
        {"min_body_mm", "number", d.min_body_mm, 4, 30, {}, "shorter bony runs along the canal are not vertebral bodies"},
        {"max_body_mm", "number", d.max_body_mm, 20, 60, {},
         "a taller run of body slices holds a disc the cortical ring did not show, and is split"},
        {"sacrum_span_mm", "number", d.sacrum_span_mm, 90, 250, {},
         "a rib-free body whose bone spans more than this left to right is the sacrum"},
        {"likely_hu", "number", d.likely_hu, 0, 400, {}, "key level at or below this: \"osteoporosis likely\" (Pickhardt 2013: 90 % specific)"},
        {"unlikely_hu", "number", d.unlikely_hu, 0, 400, {},
         "key level above this: \"osteoporosis unlikely\" (90 % sensitive below it); between the two: \"DXA suggested\""},
    };
  }
  const ProcessorInfo& Info() const override { return info_; }

  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext& context) const override {
    bone::BoneParameters p;
    p.max_slice_mm = parameters.at("max_slice_mm");
    p.cortical_hu = parameters.at("cortical_hu");
    p.slab_mm = parameters.at("slab_mm");
    p.roi_centre_fraction = parameters.at("roi_centre_fraction");
    p.roi_ap_fraction = parameters.at("roi_ap_fraction");
    p.roi_width_fraction = parameters.at("roi_width_fraction");
    p.erosion_mm = parameters.at("erosion_mm");
    p.metal_hu = parameters.at("metal_hu");
    p.min_body_mm = parameters.at("min_body_mm");
    p.max_body_mm = parameters.at("max_body_mm");
    p.sacrum_span_mm = parameters.at("sacrum_span_mm");
    p.likely_hu = parameters.at("likely_hu");
    p.unlikely_hu = parameters.at("unlikely_hu");
    if (p.likely_hu > p.unlikely_hu) {
      throw Error(ErrorCode::kInvalidInput, "bone-density: likely_hu (" + FormatNumber("%.0f", p.likely_hu) +
                                                ") is above unlikely_hu (" + FormatNumber("%.0f", p.unlikely_hu) + ")");
    }
    bone::BoneResult r = bone::MeasureBoneDensity(v, p, {.progress = context.progress, .stop_requested = context.stop_requested});
    ProcessorOutput out;
    out.measurements = bone::BoneResultJson(r, p);
    // What the thresholds were set on, beside the figure (from the converter's sidecar; no PHI).
    nlohmann::json acquisition = nlohmann::json::object();
    std::string kvp = "not recorded", contrast = "not recorded";
    if (context.sidecar != nullptr) {
      if (const auto it = context.sidecar->find("KVP"); it != context.sidecar->end() && it->is_number()) {
        acquisition["kvp"] = *it;
        kvp = FormatNumber("%.0f", it->get<double>()) + " kV";
      }
      if (const auto it = context.sidecar->find("ContrastBolusAgentPresent"); it != context.sidecar->end() && it->is_boolean()) {
        acquisition["contrast"] = *it;
        contrast = it->get<bool>() ? "given (ContrastBolusAgent recorded): the bands were set without contrast"
                                   : "none recorded";
      }
    }
    out.measurements["acquisition"] = acquisition;
    out.measurements["roi_method"] = "Comp2Comp geometry, classical spine detection (procnode bone-density 1)";
    out.measurements["parameters"] = parameters;
    out.labels = std::move(r.labels);
    for (std::size_t i = 0; i < r.bodies.size(); ++i) {
      const std::string name = BodyName(r.bodies[i], i);
      out.label_names.push_back({static_cast<int>(2 * i + 1), name + " body"});
      out.label_names.push_back({static_cast<int>(2 * i + 2), name + " trabecular ROI"});
    }
    out.segments = BoneSegments(r);

    // Key views: sagittal through the canal with each level named at its ROI, axial through the
    // key level's ROI.
    KeyView sagittal{.plane = "sagittal", .index = r.sagittal_column, .caption = "sagittal, anterior on the left"};
    for (std::size_t i = 0; i < r.bodies.size(); ++i) {
      const auto& b = r.bodies[i];
      sagittal.marks.push_back({{b.roi_centre[0], b.roi_centre[1], b.roi_centre[2]}, b.level.empty() ? "?" : b.level});
    }
    out.key_views.push_back(sagittal);
    const int focus = r.key_body >= 0 ? r.key_body : (r.bodies.empty() ? -1 : static_cast<int>(r.bodies.size() / 2));
    if (focus >= 0) {
      const auto& b = r.bodies[focus];
      out.key_views.push_back({.plane = "axial", .index = static_cast<std::size_t>(std::lround(b.roi_centre[2])),
                               .caption = "axial through the " + BodyName(b, focus) + " ROI (patient right on the left)"});
    }

    out.key_legend = {{{70, 130, 255}, "vertebral bodies (colours alternate)"}, {{255, 60, 40}, "trabecular ROI"}};
    ReportSection key{"Key figure"};
    if (r.key_body >= 0) {
      const auto& b = r.bodies[r.key_body];
      key.rows = {{"Level", b.level + (b.level == "L1" ? "" : " (L1 not available)")},
                  {"Trabecular attenuation", FormatNumber("%.0f HU", b.mean_hu) + FormatNumber("  (median %.0f", b.median_hu) +
                                                 FormatNumber(", SD %.0f HU)", b.sd_hu)},
                  {"Decision support", r.triage},
                  {"Bands", FormatNumber("<= %.0f HU osteoporosis likely; ", p.likely_hu) +
                                FormatNumber("> %.0f HU osteoporosis unlikely; between: DXA suggested", p.unlikely_hu)},
                  {"Tube voltage", kvp},
                  {"Contrast", contrast}};
    } else {
      key.rows = {{"Level", "none: L1, T12 and L2 are not in the field of view, named with confidence and measured"}};
    }
    key.paragraph = "Decision support, not a diagnosis: a low value suggests referral for DXA; it does not establish "
                    "osteoporosis, and a value above the upper band does not exclude it.";
    ReportSection table{"Per level"};
    table.table.header = {"", "Mean HU", "Median HU", "SD HU", "ROI mL", "Level from"};
    for (std::size_t i = 0; i < r.bodies.size(); ++i) {
      const auto& b = r.bodies[i];
      std::vector<std::string> row{BodyName(b, i)};
      if (b.excluded) {
        row.insert(row.end(), {"excluded", "-", "-", "-"});
      } else {
        row.insert(row.end(), {FormatNumber("%.0f", b.mean_hu), FormatNumber("%.0f", b.median_hu), FormatNumber("%.0f", b.sd_hu),
                               FormatNumber("%.2f", b.roi_ml)});
      }
      row.push_back(b.confidence == "uncertain" ? "uncertain" : std::string(b.RibBearing() ? "ribs, " : "") + b.confidence);
      table.table.rows.push_back(row);
    }
    for (std::size_t i = 0; i < r.bodies.size(); ++i) {
      if (r.bodies[i].excluded) table.rows.push_back({BodyName(r.bodies[i], i) + " excluded", r.bodies[i].exclusion});
    }
    ReportSection method{"Method and limits"};
    method.paragraph =
        "The spinal canal is followed slice by slice, the vertebral body is the bone enclosed by its cortex anterior to the "
        "canal, bodies are separated at the discs. The trabecular region of interest (Comp2Comp's geometry) is an ellipse on a " +
        FormatNumber("%.1f", p.slab_mm) + " mm slab at each body's middle, centred at " + FormatNumber("%.0f", 100 * p.roi_centre_fraction) +
        " % of its depth from the posterior edge, " + FormatNumber("%.0f", 100 * p.roi_ap_fraction) + " % of the depth by " +
        FormatNumber("%.0f", 100 * p.roi_width_fraction) + " % of the width, kept " + FormatNumber("%.1f", p.erosion_mm) +
        " mm inside the cortex. Levels are counted from the lowest rib-bearing vertebra (T12) or the first (T1); where the field "
        "of view or transitional anatomy leaves them open they are reported as uncertain. The bands were set on non-contrast "
        "120 kV CT (Pickhardt 2013); contrast raises trabecular attenuation and other tube voltages change it, and automated "
        "regions read about 21 HU higher than manual ones. Not validated for children, fractured or instrumented vertebrae.";
    method.rows = {{"Levels", r.bodies.empty() ? "-" : r.bodies.front().level_method},
                   {"Canal followed over", std::to_string(r.canal_slices) + " slices"},
                   {"Sacrum", r.sacrum_found ? "found (ends the column)" : "not in the field of view"}};
    out.report = {key, table, method};
    out.warnings = r.warnings;
    out.device = "cpu";
    return out;
  }

 private:
  ProcessorInfo info_;
};

}  // namespace

void RegisterBoneDensity(ProcessorRegistry& registry) { registry.Add(std::make_unique<BoneDensityProcessor>()); }

}  // namespace procnode
