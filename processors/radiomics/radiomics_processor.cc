// The "radiomics" processor: IBSI chapter 1 features (extraction.h) of every region of interest the
// study holds for the input series (RTSTRUCT ROIs, SEG segments; a NIfTI mask on the command line), one row
// each, with IBSI's reference configurations A-E as presets and each setting overridable. Results:
// the features as measurements and a CSV (one row per region, one column per feature) kept with
// the job, a report of the main features and the settings, and the regions as a SEG with a TID
// 1500 SR holding every feature of each region (codes in procnode's private scheme, meaning = tag).
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/format.h"
#include "processors/builtin.h"
#include "processors/radiomics/extraction.h"

namespace procnode {
namespace {

using radiomics::Settings;

// A feature's concept in procnode's private coding scheme (declared in the SR): CodeValue "R" and
// eight hex digits of the tag's FNV-1a hash (CodeValue is SH, 16 characters, and IBSI's tags are
// longer; the test checks that no two tags share one), CodeMeaning the IBSI tag itself.
Code FeatureConcept(const std::string& tag) {
  uint32_t hash = 2166136261u;
  for (const char c : tag) hash = (hash ^ static_cast<uint8_t>(c)) * 16777619u;
  char value[16];
  std::snprintf(value, sizeof value, "R%08X", hash);
  return {value, kPrivateCodingScheme, tag};
}

// A feature's UCUM unit: lengths, areas and volumes in mm; intensities in the image's unit (HU for
// CT, none otherwise); everything else (texture, ratios, fractions, counts of bins) has none.
Code FeatureUnit(const std::string& tag, bool hounsfield) {
  static const Code none{"1", "UCUM", "no units"};
  if (tag == "morph_volume" || tag == "morph_vol_approx") return {"mm3", "UCUM", "cubic millimeter"};
  if (tag == "morph_area_mesh") return {"mm2", "UCUM", "square millimeter"};
  if (tag == "morph_av") return {"/mm", "UCUM", "per millimeter"};
  if (tag == "morph_com" || tag == "morph_diam" || (tag.starts_with("morph_pca_") && tag.ends_with("_axis"))) return {"mm", "UCUM", "millimeter"};
  if (!hounsfield) return tag == "morph_integ_int" ? Code{"mm3", "UCUM", "cubic millimeter"} : none;
  static const std::set<std::string> kIntensities{"stat_mean", "stat_median", "stat_min", "stat_p10", "stat_p90", "stat_max",
                                                  "stat_iqr",  "stat_range",  "stat_mad", "stat_rmad", "stat_medad", "stat_rms",
                                                  "loc_peak_loc", "loc_peak_glob", "ivh_i10", "ivh_i90", "ivh_diff_i10_i90"};
  if (kIntensities.contains(tag)) return {"[hnsf'U]", "UCUM", "Hounsfield unit"};
  if (tag == "stat_var") return {"[hnsf'U]2", "UCUM", "Hounsfield unit squared"};
  if (tag == "morph_integ_int") return {"mm3.[hnsf'U]", "UCUM", "cubic millimeter Hounsfield unit"};
  return none;
}

Settings SettingsOf(const nlohmann::json& p, std::string& described) {
  const std::string configuration = p.at("configuration");
  Settings s;
  if (configuration != "custom") s = radiomics::Configuration(configuration);
  const std::string interpolation = p.at("interpolation");
  const double spacing = p.at("spacing_mm");
  if (interpolation == "none") {
    s.interpolation.reset();
  } else if (interpolation != "preset" || spacing > 0) {
    radiomics::Interpolation how = s.interpolation.value_or(radiomics::Interpolation{});
    if (interpolation != "preset") how.cubic = interpolation == "cubic";
    if (spacing > 0) how.spacing = {spacing, spacing, how.in_plane ? 0.0 : spacing};
    s.interpolation = how;
  }
  const std::string range = p.at("range");
  if (range == "none") {
    s.range.reset();
  } else if (range != "preset") {
    double low = 0, high = 0;
    char comma = 0;
    std::istringstream in(range);
    if (!(in >> low >> comma >> high) || comma != ',' || !(low < high)) {
      throw Error(ErrorCode::kInvalidInput, "radiomics: range must be \"LOW,HIGH\" with LOW < HIGH, \"none\" or \"preset\", not \"" + range + "\"");
    }
    s.range = std::make_pair(low, high);
  }
  const double sigmas = p.at("outlier_sigmas");
  if (sigmas == 0) {
    s.outlier_sigmas.reset();
  } else if (sigmas > 0) {
    s.outlier_sigmas = sigmas;
  }
  const std::string discretisation = p.at("discretisation");
  if (discretisation == "bin_size") s.discretisation = Settings::Discretisation::kBinSize;
  if (discretisation == "bin_number") s.discretisation = Settings::Discretisation::kBinNumber;
  if (configuration == "custom" && discretisation == "preset") s.discretisation = Settings::Discretisation::kBinNumber;
  if (p.at("bin_width").get<double>() > 0) s.bin_width = p.at("bin_width");
  if (p.at("bin_number").get<int>() > 0) s.bin_number = p.at("bin_number");
  const std::string aggregation = p.at("aggregation");
  if (aggregation == "2D") s.aggregation = radiomics::Aggregation::kTwoD;
  if (aggregation == "3D") s.aggregation = radiomics::Aggregation::kThreeD;
  const std::string families = p.at("families");
  std::istringstream list(families);
  for (std::string family; std::getline(list, family, ',');) {
    if (!family.empty()) s.families.insert(family);
  }
  described = "configuration " + configuration + "; " +
              (s.interpolation ? FormatNumber("%g mm ", s.interpolation->spacing[0]) + (s.interpolation->in_plane ? "in-plane " : "") +
                                     (s.interpolation->cubic ? "cubic B-spline" : "linear") + " interpolation, rounded"
                               : std::string("native grid")) +
              "; " + (s.range ? FormatNumber("re-segmented to [%g, ", s.range->first) + FormatNumber("%g]", s.range->second) : "no range") +
              (s.outlier_sigmas ? FormatNumber(", outliers beyond %g SD removed", *s.outlier_sigmas) : "") + "; " +
              (s.discretisation == Settings::Discretisation::kBinSize ? FormatNumber("fixed bin size %g", s.bin_width)
                                                                      : "fixed bin number " + std::to_string(s.bin_number)) +
              (families.empty() ? "" : "; families " + families) + (aggregation == "all" ? "" : "; " + aggregation + " aggregation");
  return s;
}

class RadiomicsProcessor : public Processor {
 public:
  RadiomicsProcessor() {
    info_.name = "radiomics";
    info_.version = "1";
    info_.description = "IBSI chapter 1 radiomics features of each region of interest (the study's RTSTRUCT ROIs and SEG segments, or a mask): "
                        "intensity, histogram, texture matrices and shape, IBSI configurations A-E as presets";
    info_.report_title = "Radiomics features (IBSI)";
    info_.modalities = {"CT", "MR", "PT"};
    info_.host_bytes_per_voxel = 48;
    info_.default_results = {"pdf", "seg", "sr"};
    info_.parameters = {
        {"configuration", "string", "custom", {}, {}, {"custom", "A", "B", "C", "D", "E"},
         "IBSI 1's reference configurations (CT in HU): A 2D native, B 2D 2 mm, C 3D 2 mm bin size 25, D 3D 2 mm 3 SD outliers, E 3D "
         "2 mm cubic; custom: native grid, no re-segmentation, 32 bins"},
        {"interpolation", "string", "preset", {}, {}, {"preset", "none", "linear", "cubic"}, "image interpolation"},
        {"spacing_mm", "number", 0.0, 0, 20, {}, "interpolated voxel size (0: the preset's)"},
        {"range", "string", "preset", {}, {}, {}, "re-segmentation range \"LOW,HIGH\" in the image's units, \"none\" or \"preset\""},
        {"outlier_sigmas", "number", -1.0, -1, 10, {}, "remove voxels beyond this many SD of the mean (0: none, -1: the preset's)"},
        {"discretisation", "string", "preset", {}, {}, {"preset", "bin_size", "bin_number"}, "fixed bin size or fixed bin number"},
        {"bin_width", "number", 0.0, 0, 10000, {}, "fixed bin size (0: the preset's); bins start at the range's low bound"},
        {"bin_number", "integer", 0, 0, 10000, {}, "fixed bin number (0: the preset's)"},
        {"aggregation", "string", "all", {}, {}, {"all", "2D", "3D"},
         "the texture families' aggregations: all, 2D (per slice and 2.5D: IBSI's 2D configurations, single images) or 3D"},
        {"families", "string", "", {}, {}, {},
         "only these feature families, comma-separated (morph, loc, stat, ih, ivh, cm, rlm, szm, dzm, ngt, ngl); empty: all"},
        {"regions_from", "string", "", {}, {}, {},
         "take the regions from this processor's labels, run first on the same series (e.g. lung-emphysema: right lung, "
         "left lung, emphysema), instead of the study's RTSTRUCT and SEG; empty: the study's"},
        {"regions_from_parameters", "string", "{}", {}, {}, {}, "that processor's parameters, as a JSON object"},
        {"roi", "string", "", {}, {}, {},
         "only the regions of this name: an RTSTRUCT ROI name, or a SEG segment's number, label or property code (value or "
         "meaning); empty: every region"},
    };
  }
  const ProcessorInfo& Info() const override { return info_; }

  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext& context) const override {
    std::string described;
    const Settings settings = SettingsOf(parameters, described);
    std::vector<std::string> upstream_warnings;
    if (context.progress) context.progress(0.0, "regions of interest");
    std::vector<RegionMask> regions;
    const std::string upstream = parameters.at("regions_from");
    if (!upstream.empty()) {
      // A chain: the labels of another processor's run on this input, one region per segment.
      nlohmann::json upstream_parameters;
      try {
        upstream_parameters = nlohmann::json::parse(parameters.at("regions_from_parameters").get<std::string>());
      } catch (const nlohmann::json::exception&) {
        throw Error(ErrorCode::kInvalidInput, "radiomics: regions_from_parameters must be a JSON object");
      }
      if (!upstream_parameters.is_object()) throw Error(ErrorCode::kInvalidInput, "radiomics: regions_from_parameters must be a JSON object");
      if (!context.run_processor) throw Error(ErrorCode::kInvalidInput, "radiomics: regions_from needs a node to run \"" + upstream + "\"");
      const ProcessorOutput made = context.run_processor(upstream, upstream_parameters);
      if (made.labels.size() != v.VoxelCount() || made.segments.empty()) {
        throw Error(ErrorCode::kInvalidInput, "radiomics: " + upstream + " made no labelled segments to take regions from");
      }
      for (const ResultSegment& segment : made.segments) {
        RegionMask region{.name = segment.label, .source = upstream, .voxels = std::vector<uint8_t>(v.VoxelCount(), 0),
                          .aliases = {segment.type.meaning, segment.type.value}, .category = segment.category, .type = segment.type};
        std::array<bool, 256> member{};
        for (const int value : segment.label_values) {
          if (value >= 0 && value < 256) member[static_cast<std::size_t>(value)] = true;
        }
        for (std::size_t i = 0; i < made.labels.size(); ++i) region.voxels[i] = member[made.labels[i]];
        if (std::find(region.voxels.begin(), region.voxels.end(), 1) != region.voxels.end()) regions.push_back(std::move(region));
      }
      for (const auto& warning : made.warnings) upstream_warnings.push_back(upstream + ": " + warning);
    } else {
      if (!context.regions) throw Error(ErrorCode::kInvalidInput, "radiomics: no regions of interest were given");
      regions = context.regions();
    }
    const std::string wanted = parameters.at("roi");
    if (!wanted.empty()) {
      std::erase_if(regions, [&](const RegionMask& r) { return r.name != wanted && std::find(r.aliases.begin(), r.aliases.end(), wanted) == r.aliases.end(); });
    }
    if (regions.empty()) {
      throw Error(ErrorCode::kInvalidInput, wanted.empty() ? "radiomics: the study holds no region of interest (an RTSTRUCT or a "
                                                             "SEG of the series, or a mask on the command line)"
                                                           : "radiomics: no region is named \"" + wanted + "\"");
    }
    ProcessorOutput out;
    out.warnings = std::move(upstream_warnings);
    nlohmann::json rows = nlohmann::json::array();
    std::set<std::string> columns;  // sorted
    std::vector<radiomics::FeatureSet> all;
    // The image once; each region sets its own mask.
    radiomics::Region region;
    region.dims = v.dims;
    for (int a = 0; a < 3; ++a) region.spacing[a] = std::abs(v.spacing[a]);
    region.intensities.assign(v.voxels.begin(), v.voxels.end());
    for (std::size_t n = 0; n < regions.size(); ++n) {
      if (context.stop_requested && context.stop_requested()) throw Error(ErrorCode::kCancelled, "radiomics: cancelled");
      const RegionMask& roi = regions[n];
      if (context.progress) context.progress(static_cast<double>(n) / regions.size(), "region " + std::to_string(n + 1) + " of " + std::to_string(regions.size()));
      if (roi.voxels.size() != v.VoxelCount()) throw Error(ErrorCode::kInvalidInput, "radiomics: region \"" + roi.name + "\" is on another grid");
      region.mask = roi.voxels;
      radiomics::FeatureSet features;
      try {
        features = radiomics::Extract(region, settings);
      } catch (const Error& e) {
        throw Error(e.code(), "region \"" + roi.name + "\" (" + roi.source + "): " + e.what());
      }
      for (const auto& [tag, value] : features.values) {
        columns.insert(tag);
      }
      for (const auto& [tag, reason] : features.undefined) {
        columns.insert(tag);
      }
      std::size_t voxels = 0;
      for (const uint8_t m : roi.voxels) voxels += m != 0;
      rows.push_back({{"name", roi.name}, {"source", roi.source}, {"voxels", voxels}, {"features", features.values},
                      {"undefined", features.undefined}});
      all.push_back(std::move(features));
    }
    out.measurements = {{"settings", described}, {"parameters", parameters}, {"regions", rows}};
    out.device = "cpu";
    if (context.measurements_only) return out;  // a batch's rows: no CSV file, SEG, SR or report wanted
    std::string csv = "region,source";
    for (const auto& c : columns) csv += "," + c;
    csv += "\n";
    for (std::size_t n = 0; n < regions.size(); ++n) {
      csv += CsvField(regions[n].name) + "," + CsvField(regions[n].source);
      for (const auto& c : columns) {
        const auto it = all[n].values.find(c);
        csv += "," + (it == all[n].values.end() ? std::string() : FormatNumber("%.10g", it->second));
      }
      csv += "\n";
    }
    out.files.push_back({"radiomics.csv", csv, "IBSI features, one row per region"});
    // The regions as SEG segments (each voxel's set of regions one label value, so overlapping
    // regions stay whole), each with its features as the SR's measurement group.
    std::map<uint64_t, int> sets;
    if (regions.size() <= 64) {
      out.labels.assign(v.VoxelCount(), 0);
      for (std::size_t i = 0; i < out.labels.size() && sets.size() <= 255; ++i) {
        uint64_t set = 0;
        for (std::size_t n = 0; n < regions.size(); ++n) set |= static_cast<uint64_t>(regions[n].voxels[i] != 0) << n;
        if (set != 0) out.labels[i] = static_cast<uint8_t>(sets.emplace(set, static_cast<int>(sets.size()) + 1).first->second);
      }
    }
    if (regions.size() > 64 || sets.size() > 255) {
      out.labels.clear();
      out.warnings.push_back("the regions overlap in more ways than a SEG's 255 label values hold: no SEG or SR, the CSV has every feature");
    } else {
      const Code tissue{"85756007", "SCT", "Tissue"};
      const bool hounsfield = v.units == "HU";
      for (std::size_t n = 0; n < regions.size(); ++n) {
        ResultSegment segment{.label = regions[n].name.substr(0, 64),
                              .category = regions[n].category.value_or(tissue),
                              .type = regions[n].type.value_or(tissue)};
        for (const auto& [set, value] : sets) {
          if ((set >> n) & 1) segment.label_values.push_back(value);
        }
        static const std::array<std::array<int, 3>, 6> kColours{{{230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48}, {145, 30, 180}, {70, 240, 240}}};
        segment.rgb = kColours[n % kColours.size()];
        segment.finding = segment.type;
        for (const auto& [tag, value] : all[n].values) segment.measurements.push_back({FeatureConcept(tag), value, FeatureUnit(tag, hounsfield), std::nullopt});
        out.segments.push_back(std::move(segment));
      }
    }
    ReportSection table{"Main features"};
    table.table.header = {"Region", "Voxels", "Volume mL", "Sphericity", "Mean", "SD", "GLCM contrast", "GLSZM zone %"};
    for (std::size_t n = 0; n < regions.size(); ++n) {
      auto value = [&](const std::string& tag, const char* format) {
        const auto it = all[n].values.find(tag);
        return it == all[n].values.end() ? std::string("-") : FormatNumber(format, it->second);
      };
      const bool two_d = all[n].values.contains("cm_contrast_2D_avg") && !settings.interpolation.has_value();
      const auto volume = all[n].values.find("morph_volume");  // mm3, the surface mesh's
      table.table.rows.push_back({regions[n].name, rows[n]["voxels"].dump(),
                                  volume == all[n].values.end() ? "-" : FormatNumber("%.2f", volume->second / 1000.0), value("morph_sphericity", "%.3f"),
                                  value("stat_mean", "%.1f"),
                                  FormatNumber("%.1f", std::sqrt(all[n].values.contains("stat_var") ? all[n].values.at("stat_var") : NAN)),
                                  value(two_d ? "cm_contrast_2D_avg" : "cm_contrast_3D_avg", "%.3g"),
                                  value(two_d ? "szm_z_perc_2D" : "szm_z_perc_3D", "%.3g")});
    }
    ReportSection method{"Settings and method"};
    method.rows = {{"Settings", described}, {"Features", std::to_string(columns.size()) + " per region (radiomics.csv), named by IBSI's tags"}};
    method.paragraph = "Features follow the Image Biomarker Standardisation Initiative, chapter 1; procnode's implementation meets IBSI's "
                       "reference values on the digital phantom and the CT phantom's configurations A-E for every feature IBSI standardises. "
                       "Shape features come from a marching cubes surface of the region (volume in mL above is the mesh's); the "
                       "oriented bounding box and minimum volume enclosing ellipsoid, which IBSI does not standardise, are left out.";
    out.report = {table, method};
    if (context.progress) context.progress(1.0, "done");
    return out;
  }

 private:
  ProcessorInfo info_;
};

}  // namespace

void RegisterRadiomics(ProcessorRegistry& registry) { registry.Add(std::make_unique<RadiomicsProcessor>()); }

}  // namespace procnode
