// The "lung-emphysema" processor: lung segmentation and emphysema quantification (lung_emphysema.h)
// with its SEG segments, SR measurement groups and report sections.
#include <cmath>
#include <memory>

#include "core/format.h"
#include "processors/builtin.h"
#include "processors/lung/lung_emphysema.h"
#include "processors/lung/lung_ops.h"

namespace procnode {
namespace {

// SEG segments and SR measurement groups of the lung processor. Standard concepts where DICOM has
// them (SNOMED CT anatomy and finding, DCM attenuation coefficient, UCUM units); the densitometry
// indices without a standard code use procnode's private scheme 99PROCNODE.
std::vector<ResultSegment> LungSegments(const lung::LungResult& r, const lung::LungParameters& p) {
  const Code anatomical{"123037004", "SCT", "Anatomical Structure"};
  const Code abnormal{"49755003", "SCT", "Morphologically Abnormal Structure"};
  const Code lung{"39607008", "SCT", "Lung"};
  const Code emphysema{"87433001", "SCT", "Pulmonary emphysema"};
  const Code ml{"mL", "UCUM", "milliliter"}, hu{"[hnsf'U]", "UCUM", "Hounsfield unit"}, percent{"%", "UCUM", "percent"};
  const Code volume{"118565006", "SCT", "Volume"}, attenuation{"112031", "DCM", "Attenuation Coefficient"};
  const Code mean{"373098007", "SCT", "Mean"};
  auto threshold_text = [](double t) { return std::to_string(static_cast<int>(std::lround(t))); };
  const Code laa{"LAA" + threshold_text(-p.emphysema_threshold_hu), "99PROCNODE",
                 "Percent of lung volume below " + threshold_text(p.emphysema_threshold_hu) + " HU"};
  const Code laa2{"LAA" + threshold_text(-p.laa2_threshold_hu), "99PROCNODE",
                  "Percent of lung volume below " + threshold_text(p.laa2_threshold_hu) + " HU"};
  const Code percentile{"PERC" + threshold_text(p.percentile), "99PROCNODE",
                        threshold_text(p.percentile) + "th percentile lung density"};
  auto lung_segment = [&](const char* label, Code type, const lung::LungMeasures& m, std::array<int, 3> rgb, int own, int emph) {
    ResultSegment s{.label = label, .category = anatomical, .type = type, .label_values = {own, emph}, .rgb = rgb,
                    .finding = lung, .finding_site = type};
    s.measurements = {{volume, m.volume_ml, ml, std::nullopt},
                      {attenuation, m.mean_hu, hu, mean},
                      {laa, m.laa_percent, percent, std::nullopt},
                      {laa2, m.laa2_percent, percent, std::nullopt},
                      {percentile, m.percentile_hu, hu, std::nullopt}};
    return s;
  };
  std::vector<ResultSegment> segments{
      lung_segment("Right lung", {"3341006", "SCT", "Right lung"}, r.right, {40, 120, 255}, 1, 3),
      lung_segment("Left lung", {"44029006", "SCT", "Left lung"}, r.left, {30, 200, 90}, 2, 4)};
  ResultSegment e{.label = "Emphysema", .category = abnormal, .type = emphysema, .label_values = {3, 4}, .rgb = {255, 220, 0},
                  .finding = emphysema, .finding_site = lung};
  e.measurements = {{volume, r.total.emphysema_ml, ml, std::nullopt},
                    {{"LAACLUSTERS", "99PROCNODE", "Number of low attenuation clusters"},
                     static_cast<double>(r.total.clusters), {"{clusters}", "UCUM", "clusters"}, std::nullopt}};
  if (r.total.cluster_exponent_defined) {
    e.measurements.push_back({{"LAAD", "99PROCNODE", "Low attenuation cluster size exponent D"}, r.total.cluster_exponent,
                              {"1", "UCUM", "no units"}, std::nullopt});
  }
  segments.push_back(e);
  return segments;
}

class LungEmphysemaProcessor : public Processor {
 public:
  LungEmphysemaProcessor() {
    info_.name = "lung-emphysema";
    info_.version = "1";
    info_.description = "Lung segmentation (right, left, trachea and main bronchi removed) and emphysema quantification "
                        "(volume, mean lung density, LAA%-950, LAA%-910, 15th percentile, low-attenuation clusters)";
    info_.report_title = "Lung density and emphysema";
    info_.modalities = {"CT"};
    info_.min_slices = 8;
    info_.has_gpu_implementation = true;
    info_.gpu_bytes_per_voxel = 13;  // float HU + mask + int32 parent and labels
    info_.host_bytes_per_voxel = 22; // float volume + labels, masks, int32 components and smoothing copy
    const lung::LungParameters d;
    info_.parameters = {
        {"variant", "string", d.variant, {}, {}, {"fast", "accurate"},
         "fast: per-slice hole filling only; accurate: also closes each lung in-plane by closing_mm, bringing "
         "juxtapleural vessels and nodules into the lung field (slower)"},
        {"air_threshold_hu", "number", d.air_threshold_hu, -900, -200, {},
         "air below, tissue above: where the lung fields end. Higher values give larger lungs with more of the "
         "pleural and vessel partial volume"},
        {"emphysema_threshold_hu", "number", d.emphysema_threshold_hu, -1024, -800, {},
         "low-attenuation threshold for emphysema labels, LAA% and clusters (-950 HU is the validated value "
         "for thin-slice, non-contrast CT)"},
        {"laa2_threshold_hu", "number", d.laa2_threshold_hu, -1024, -700, {},
         "second low-attenuation threshold reported as LAA%-910"},
        {"percentile", "number", d.percentile, 1, 99, {}, "density percentile reported (15th by default)"},
        {"airway_max_area_mm2", "number", d.airway_max_area_mm2, 100, 3000, {},
         "an airway cross-section larger than this has entered the lung and ends its branch"},
        {"bronchus_length_mm", "number", d.bronchus_length_mm, 0, 150, {},
         "how far below the carina the main bronchi are followed and removed"},
        {"airway_lumen_hu", "number", d.airway_lumen_hu, -1024, -800, {},
         "where a main bronchus runs into the lung in a slice, its lumen (air below this) is still followed and "
         "removed; lower values stop earlier on noisy sharp kernels"},
        {"fill_holes", "boolean", d.fill_holes, {}, {}, {}, "fill vessels and other holes inside each lung, slice by slice"},
        {"closing_mm", "number", d.closing_mm, 0, 20, {}, "in-plane closing radius of the accurate variant"},
        {"smoothing_mm", "number", d.smoothing_mm, 0, 5, {},
         "in-plane Gaussian sigma applied before densitometry. Sharp (lung) kernels are noisier and read higher "
         "LAA%-950 than standard kernels; about 1 mm narrows the gap, at the cost of small low-attenuation regions"},
    };
  }
  const ProcessorInfo& Info() const override { return info_; }

  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext& context) const override {
    lung::LungParameters p;
    p.variant = parameters.at("variant");
    p.air_threshold_hu = parameters.at("air_threshold_hu");
    p.emphysema_threshold_hu = parameters.at("emphysema_threshold_hu");
    p.laa2_threshold_hu = parameters.at("laa2_threshold_hu");
    p.percentile = parameters.at("percentile");
    p.airway_max_area_mm2 = parameters.at("airway_max_area_mm2");
    p.bronchus_length_mm = parameters.at("bronchus_length_mm");
    p.airway_lumen_hu = parameters.at("airway_lumen_hu");
    p.fill_holes = parameters.at("fill_holes");
    p.closing_mm = parameters.at("closing_mm");
    p.smoothing_mm = parameters.at("smoothing_mm");
    std::string fallback;
    auto backend = lung::MakeLungBackend(context.device, &fallback);
    const lung::LungResult r =
        lung::SegmentLungsAndQuantify(v, p, *backend, {.progress = context.progress, .stop_requested = context.stop_requested});
    ProcessorOutput out;
    out.measurements = lung::LungResultJson(r);
    out.measurements["parameters"] = parameters;
    out.labels = r.labels;
    out.label_names = {{1, "right lung"}, {2, "left lung"}, {3, "emphysema, right lung"}, {4, "emphysema, left lung"}};
    out.segments = LungSegments(r, p);
    const auto &R = r.right, &L = r.left, &T = r.total;
    auto row = [](const std::string& label, const char* format, double right, double left, double total) {
      return std::vector<std::string>{label, FormatNumber(format, right), FormatNumber(format, left), FormatNumber(format, total)};
    };
    ReportSection figures{"Measurements"};
    figures.table.header = {"", "Right lung", "Left lung", "Both lungs"};
    figures.table.rows = {
        row("Volume (mL)", "%.0f", R.volume_ml, L.volume_ml, T.volume_ml),
        row("Mean lung density (HU)", "%.1f", R.mean_hu, L.mean_hu, T.mean_hu),
        row("LAA%" + FormatNumber("%.0f", p.emphysema_threshold_hu) + " (% of volume)", "%.2f", R.laa_percent, L.laa_percent, T.laa_percent),
        row("LAA%" + FormatNumber("%.0f", p.laa2_threshold_hu) + " (% of volume)", "%.2f", R.laa2_percent, L.laa2_percent, T.laa2_percent),
        row(FormatNumber("%.0fth percentile density (HU)", p.percentile), "%.0f", R.percentile_hu, L.percentile_hu, T.percentile_hu),
        row("Emphysema volume (mL)", "%.1f", R.emphysema_ml, L.emphysema_ml, T.emphysema_ml),
        row("Low-attenuation clusters", "%.0f", static_cast<double>(R.clusters), static_cast<double>(L.clusters),
            static_cast<double>(T.clusters)),
        {"Cluster-size exponent D", R.cluster_exponent_defined ? FormatNumber("%.2f", R.cluster_exponent) : "-",
         L.cluster_exponent_defined ? FormatNumber("%.2f", L.cluster_exponent) : "-",
         T.cluster_exponent_defined ? FormatNumber("%.2f", T.cluster_exponent) : "-"}};
    figures.rows = {{"Left/right volume ratio", R.volume_ml > 0 ? FormatNumber("%.2f", L.volume_ml / R.volume_ml) : "-"}};
    ReportSection density{"Lung density histogram"};
    constexpr int kFirst = -1024, kLast = -500, kBin = 4;
    for (int hu = kFirst; hu < kLast; hu += kBin) {
      double count = 0;
      for (int b = hu; b < hu + kBin; ++b) count += static_cast<double>(r.histograms[0][b - lung::kHistogramMinHu] + r.histograms[1][b - lung::kHistogramMinHu]);
      density.histogram.counts.push_back(count);
    }
    density.histogram.first = kFirst;
    density.histogram.step = kBin;
    density.histogram.x_label = "HU, both lungs (voxels above -500 HU not shown)";
    density.histogram.markers = {{p.emphysema_threshold_hu, FormatNumber("%.0f HU", p.emphysema_threshold_hu)},
                                 {p.laa2_threshold_hu, FormatNumber("%.0f HU", p.laa2_threshold_hu)},
                                 {T.percentile_hu, FormatNumber("%.0fth percentile", p.percentile) + FormatNumber(" (%.0f HU)", T.percentile_hu)}};
    ReportSection method{"Method"};
    method.paragraph =
        "Lung fields are the air (below " + FormatNumber("%.0f", p.air_threshold_hu) +
        " HU) inside the body; the trachea and main bronchi are followed from the neck and removed; the lungs are "
        "separated into right and left (at their junction where they touch) and vessels inside them are filled" +
        std::string(p.variant == "accurate" ? ", after an in-plane closing of " + FormatNumber("%.0f", p.closing_mm) + " mm" : "") +
        ". Emphysema is the lung volume below " + FormatNumber("%.0f", p.emphysema_threshold_hu) +
        " HU (LAA%); the mean lung density and the density percentile come from the histogram of the lung voxels" +
        (p.smoothing_mm > 0 ? ", after in-plane smoothing (Gaussian sigma " + FormatNumber("%.1f", p.smoothing_mm) + " mm)" : "") +
        ". Low-attenuation values depend on the reconstruction kernel: sharp (lung) kernels read higher than standard "
        "kernels. Clusters are connected low-attenuation regions; D is the slope of their cumulative size "
        "distribution (lower D: larger, fewer clusters).";
    method.rows = {{"Variant", p.variant},
                   {"Airways", r.airway.found ? FormatNumber("trachea and main bronchi removed (%.1f mL)", r.airway.removed_ml)
                                              : "trachea not found; not removed"},
                   {"Left/right", r.split_at_junction ? "separated at the lung junction" : "separate components"}};
    out.report = {figures, density, method};
    out.warnings = r.warnings;
    out.device = r.device;
    out.device_note = !r.device_note.empty() ? r.device_note : fallback;
    return out;
  }

 private:
  ProcessorInfo info_;
};

}  // namespace

void RegisterLungEmphysema(ProcessorRegistry& registry) { registry.Add(std::make_unique<LungEmphysemaProcessor>()); }

}  // namespace procnode
