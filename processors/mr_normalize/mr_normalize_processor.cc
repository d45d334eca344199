// The "mr-normalize" processor: N4 bias-field correction (bias_field.h, ITK) within the head's
// foreground, then an intensity normalization (normalize.h); returns the normalized image (and,
// on request, the field) as derived images for the "derived" result writer, and the field's
// range, the foreground volume, the method's parameters and the coefficients of variation before
// and after as measurements.
#include <cerrno>
#include <cmath>
#include <iterator>
#include <optional>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "core/files.h"
#include "core/format.h"
#include "processors/builtin.h"
#include "processors/mr_normalize/bias_field.h"
#include "processors/mr_normalize/normalize.h"

namespace procnode {
namespace {

const Code kDivision{"113046", "DCM", "Pixel by pixel division"};
const Code kZScore{"113071", "DCM", "Z-Score"};
const Code kSmoothing{"113087", "DCM", "Smoothing"};

mr::NyulModel LoadNyulModel(const std::string& path) {
  if (path.empty()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: method nyul needs nyul_model (a model file from `procnode nyul-train`)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kInvalidInput, "mr-normalize: cannot read the Nyul model " + path + ": " + ErrnoReason(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the Nyul model " + path + " is not JSON");
  return mr::NyulModelFromJson(json);
}

class MrNormalizeProcessor : public Processor {
 public:
  MrNormalizeProcessor() {
    info_.name = "mr-normalize";
    info_.version = "1";
    info_.description = "MR bias-field correction (N4, ITK) and intensity normalization (z-score, percentile, WhiteStripe or Nyul), "
                        "written back as a derived image series";
    info_.report_title = "MR bias-field correction and intensity normalization";
    info_.modalities = {"MR"};
    info_.min_slices = 16;        // N4's B-spline needs a volume; 2D localizers and short stacks are refused
    info_.default_results = {"pdf", "derived"};
    info_.host_bytes_per_voxel = 40;  // input, mask, shrunk copies, the field, ITK's full-resolution lattice output
    const mr::BiasFieldParameters b;
    info_.parameters = {
        {"method", "string", "zscore", {}, {}, {"zscore", "percentile", "whitestripe", "nyul", "none"},
         "normalization after bias correction: z-score in the foreground, a percentile scale, WhiteStripe (T1/T2 brain), Nyul "
         "histogram standardisation against a trained model, or none"},
        {"bias_correction", "boolean", true, {}, {}, {}, "run N4 bias-field correction before normalizing"},
        {"shrink_factor", "integer", b.shrink_factor, 1, 16, {}, "N4 runs on a copy shrunk by this factor per axis"},
        {"levels", "integer", b.levels, 1, 8, {}, "N4 fitting levels (each doubles the B-spline mesh)"},
        {"iterations", "integer", b.iterations, 1, 1000, {}, "N4 iterations per level, at most"},
        {"convergence", "number", b.convergence, 0, 1, {}, "N4 convergence threshold"},
        {"spline_distance_mm", "number", b.spline_distance_mm, 10, 1000, {}, "B-spline control-point spacing of the first level"},
        {"fwhm", "number", b.fwhm, 0.01, 1, {}, "N4 bias-field full width at half maximum (histogram sharpening)"},
        {"percentile_low", "number", 1.0, 0, 100, {}, "percentile method: this foreground percentile becomes 0"},
        {"percentile_high", "number", 99.0, 0, 100, {}, "percentile method: this foreground percentile becomes 1"},
        {"contrast", "string", "T1", {}, {}, {"T1", "T2"},
         "WhiteStripe: T1 takes the brightest tissue peak as white matter, T2 (and FLAIR) the tallest"},
        {"stripe_width", "number", 0.05, 0.005, 0.3, {}, "WhiteStripe: the stripe's half-width in foreground quantiles"},
        {"nyul_model", "string", "", {}, {}, {}, "Nyul: the model file `procnode nyul-train` wrote"},
        {"write_field", "boolean", false, {}, {}, {}, "also write the estimated bias field as a derived series"},
    };
  }
  const ProcessorInfo& Info() const override { return info_; }

  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext& context) const override {
    auto progress = [&](double fraction, const std::string& step) {
      if (context.progress) context.progress(fraction, step);
    };
    auto check_stop = [&] {
      if (context.stop_requested && context.stop_requested()) throw Error(ErrorCode::kCancelled, "mr-normalize: cancelled");
    };
    const std::string method = parameters.at("method");
    // A model that cannot be read fails before minutes of N4.
    std::optional<mr::NyulModel> nyul;
    if (method == "nyul") nyul = LoadNyulModel(parameters.at("nyul_model"));
    if (method == "percentile" && !(parameters.at("percentile_low").get<double>() < parameters.at("percentile_high").get<double>())) {
      throw Error(ErrorCode::kInvalidInput, "mr-normalize: percentile_low must be below percentile_high");
    }

    progress(0.0, "foreground (Otsu)");
    const std::vector<uint8_t> mask = mr::ForegroundMask(v);
    const std::size_t foreground = mr::CountInside(mask);
    const double voxel_ml = std::abs(v.spacing[0] * v.spacing[1] * v.spacing[2]) / 1000.0;
    check_stop();

    ProcessorOutput out;
    nlohmann::json m;
    m["foreground"] = {{"voxels", foreground}, {"volume_ml", foreground * voxel_ml}, {"method", "otsu, largest part, holes filled"}};
    m["cv_before"] = mr::CoefficientOfVariation(v.voxels, mask);
    std::vector<float> corrected;
    std::vector<float> field;
    if (parameters.at("bias_correction").get<bool>()) {
      mr::BiasFieldParameters b;
      b.shrink_factor = parameters.at("shrink_factor");
      b.levels = parameters.at("levels");
      b.iterations = parameters.at("iterations");
      b.convergence = parameters.at("convergence");
      b.spline_distance_mm = parameters.at("spline_distance_mm");
      b.fwhm = parameters.at("fwhm");
      mr::BiasField estimate = mr::EstimateBiasField(
          v, mask, b, {.progress = [&](double f, const std::string& step) { progress(0.05 + 0.8 * f, step); },
                       .stop_requested = context.stop_requested});
      corrected = mr::CorrectBias(v.voxels, estimate.field);
      m["bias_field"] = {{"minimum", estimate.minimum},
                         {"maximum", estimate.maximum},
                         {"range", estimate.maximum - estimate.minimum},
                         {"shrunk_dims", estimate.shrunk_dims},
                         {"iterations_per_level", estimate.iterations},
                         {"seconds", estimate.seconds}};
      if (parameters.at("write_field").get<bool>()) field = std::move(estimate.field);
    } else {
      corrected = v.voxels;
    }
    m["cv_after"] = mr::CoefficientOfVariation(corrected, mask);
    check_stop();

    progress(0.86, "normalization: " + method);
    nlohmann::json normalization{{"method", method}};
    mr::IntensityMap map;
    std::string how;
    std::vector<Code> codes;
    if (parameters.at("bias_correction").get<bool>()) codes.push_back(kDivision);
    if (method == "zscore") {
      map = mr::ZScoreMap(corrected, mask);
      normalization["mean"] = -map.offset / map.scale;
      normalization["sd"] = 1 / map.scale;
      how = "z-score within the foreground";
      codes.push_back(kZScore);
    } else if (method == "percentile") {
      const double low = parameters.at("percentile_low"), high = parameters.at("percentile_high");
      map = mr::PercentileMap(corrected, mask, low, high);
      normalization["low_percentile"] = low;
      normalization["high_percentile"] = high;
      normalization["low_value"] = -map.offset / map.scale;
      normalization["high_value"] = (1 - map.offset) / map.scale;
      how = FormatNumber("foreground percentiles %g", low) + FormatNumber(" and %g to 0 and 1", high);
    } else if (method == "whitestripe") {
      const auto contrast = parameters.at("contrast") == "T2" ? mr::Contrast::kT2 : mr::Contrast::kT1;
      const double width = parameters.at("stripe_width");
      const mr::WhiteStripe stripe = mr::WhiteStripeMap(corrected, mask, contrast, width);
      map = stripe.map;
      // The white matter's uniformity before and after N4: the stripe, on the corrected image.
      const auto wm = mr::StripeMask(corrected, mask, stripe);
      normalization["contrast"] = parameters.at("contrast");
      normalization["stripe_width"] = width;
      normalization["mode"] = stripe.mode;
      normalization["stripe"] = {stripe.low, stripe.high};
      normalization["stripe_voxels"] = stripe.voxels;
      normalization["mean"] = stripe.mean;
      normalization["sd"] = stripe.sd;
      m["white_matter_cv_before"] = mr::CoefficientOfVariation(v.voxels, wm);
      m["white_matter_cv_after"] = mr::CoefficientOfVariation(corrected, wm);
      how = "WhiteStripe (" + parameters.at("contrast").get<std::string>() + "): z-score against normal-appearing white matter";
      codes.push_back(kZScore);
    } else if (method == "nyul") {
      map = mr::NyulMap(corrected, mask, *nyul);
      normalization["model"] = mr::NyulModelJson(*nyul);
      normalization["landmarks"] = map.from;
      how = "Nyul histogram standardisation (" + std::to_string(nyul->percentiles.size()) + " landmarks, model of " +
            std::to_string(nyul->trained_on) + " series)";
    } else {
      how = "no normalization";
    }
    m["normalization"] = normalization;
    m["parameters"] = parameters;
    std::vector<float> normalized = std::move(corrected);
    mr::ApplyMap(map, normalized);
    check_stop();

    const bool n4 = parameters.at("bias_correction").get<bool>();
    const std::string description = std::string(n4 ? "N4 bias-field corrected (ITK), " : "") + how;
    DerivedImage image{.name = "normalized",
                       .series_description = std::string(n4 ? "N4 " : "") + (method == "none" ? "bias corrected" : "normalized " + method),
                       .derivation_description = "procnode mr-normalize 1: " + description,
                       .derivation_codes = codes,
                       .voxels = std::move(normalized)};
    // Normalized scales are small numbers: keep a thousandth of the foreground's SD (z-score units)
    // or of the stretch; corrected-only images keep the input's integer step.
    if (method == "zscore" || method == "whitestripe") image.precision = 0.001;
    if (method == "percentile") image.precision = 0.0001;
    if (method == "nyul") image.precision = 0.01;
    out.derived.push_back(std::move(image));
    if (!field.empty()) {
      out.derived.push_back({.name = "bias-field",
                             .series_description = "N4 bias field",
                             .derivation_description = "procnode mr-normalize 1: N4 multiplicative bias field (mean 1 in the foreground)",
                             .derivation_codes = {kSmoothing},
                             .voxels = std::move(field),
                             .precision = 0.0001});
    }

    out.measurements = m;
    ReportSection summary{"Result"};
    summary.rows = {{"Foreground", FormatNumber("%.0f mL", foreground * voxel_ml) + " (Otsu, largest part, holes filled)"},
                    {"Coefficient of variation", FormatNumber("%.3f before, ", m["cv_before"].get<double>()) +
                                                     FormatNumber("%.3f after bias correction (foreground)", m["cv_after"].get<double>())},
                    {"Normalization", how}};
    if (m.contains("bias_field")) {
      summary.rows.push_back({"Bias field", FormatNumber("%.3f to ", m["bias_field"]["minimum"].get<double>()) +
                                                FormatNumber("%.3f (mean 1 in the foreground)", m["bias_field"]["maximum"].get<double>())});
    }
    if (m.contains("white_matter_cv_before")) {
      summary.rows.push_back({"White matter CV", FormatNumber("%.3f before, ", m["white_matter_cv_before"].get<double>()) +
                                                     FormatNumber("%.3f after", m["white_matter_cv_after"].get<double>())});
    }
    ReportSection method_section{"Method"};
    method_section.paragraph =
        "N4 (Tustison 2010, ITK's N4BiasFieldCorrectionImageFilter) estimates a smooth multiplicative field on a shrunk copy within "
        "the foreground; its B-spline is evaluated at full resolution and the image divided by it. The normalized image is stored "
        "as a derived series beside the source, on the same planes. Research use: normalized intensities are not diagnostic values.";
    out.report = {summary, method_section};
    out.device = "cpu";
    progress(1.0, "done");
    return out;
  }

 private:
  ProcessorInfo info_;
};

}  // namespace

void RegisterMrNormalize(ProcessorRegistry& registry) { registry.Add(std::make_unique<MrNormalizeProcessor>()); }

}  // namespace procnode
