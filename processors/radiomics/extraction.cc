#include "processors/radiomics/extraction.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace procnode::radiomics {

Settings Configuration(const std::string& letter) {
  Settings s;
  const Interpolation in_plane{.spacing = {2, 2, 0}, .in_plane = true};
  const Interpolation isotropic{.spacing = {2, 2, 2}};
  if (letter == "A") {
    s.range = {-500, 400};
    s.bin_width = 25;
  } else if (letter == "B") {
    s.interpolation = in_plane;
    s.range = {-500, 400};
    s.discretisation = Settings::Discretisation::kBinNumber;
  } else if (letter == "C") {
    s.interpolation = isotropic;
    s.range = {-1000, 400};
    s.bin_width = 25;
    s.ivh_bin_width = 2.5;
    s.ivh_discretise = true;
  } else if (letter == "D") {
    s.interpolation = isotropic;
    s.outlier_sigmas = 3;
    s.discretisation = Settings::Discretisation::kBinNumber;
  } else if (letter == "E") {
    s.interpolation = Interpolation{.spacing = {2, 2, 2}, .cubic = true};
    s.range = {-1000, 400};
    s.outlier_sigmas = 3;
    s.discretisation = Settings::Discretisation::kBinNumber;
    s.ivh_bin_number = 1000;
  } else {
    throw Error(ErrorCode::kInvalidInput, "radiomics: configuration must be A, B, C, D or E, not \"" + letter + "\"");
  }
  return s;
}

FeatureSet Extract(const Region& input, const Settings& s) {
  Region r = s.interpolation ? Interpolate(input, *s.interpolation) : input;
  if (s.range) Resegment(r, s.range->first, s.range->second);
  if (s.outlier_sigmas) FilterOutliers(r, *s.outlier_sigmas);
  if (std::none_of(r.mask.begin(), r.mask.end(), [](uint8_t m) { return m != 0; })) {
    throw Error(ErrorCode::kInvalidInput, "radiomics: no voxel of the region is left after re-segmentation");
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t i = 0; i < r.mask.size(); ++i) {
    if (r.mask[i]) lo = std::min(lo, r.intensities[i]), hi = std::max(hi, r.intensities[i]);
  }
  Region ivh_region;
  std::optional<IvhBins> ivh;
  if (s.ivh_bin_number > 0) {
    ivh_region = r;
    DiscretiseFixedBinNumber(ivh_region, s.ivh_bin_number);
  } else {
    ivh = IvhBins{s.range ? s.range->first : lo, s.range ? s.range->second : hi, s.ivh_bin_width, s.ivh_discretise};
  }
  if (s.discretisation == Settings::Discretisation::kBinSize) {
    DiscretiseFixedBinSize(r, s.bin_width, s.range ? s.range->first : lo);
  } else {
    DiscretiseFixedBinNumber(r, s.bin_number);
  }
  FeatureSet out;
  AllFamilies(r, out, ivh, s.ivh_bin_number > 0 ? &ivh_region : nullptr, s.families);
  return out;
}

const std::vector<std::string>& FamilyNames() {
  static const std::vector<std::string> names{"morph", "loc", "stat", "ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl"};
  return names;
}

void AllFamilies(const Region& r, FeatureSet& out, const std::optional<IvhBins>& ivh, const Region* ivh_levels,
                 const std::set<std::string>& families) {
  for (const auto& family : families) {
    if (std::find(FamilyNames().begin(), FamilyNames().end(), family) == FamilyNames().end()) {
      throw Error(ErrorCode::kInvalidInput, "radiomics: unknown feature family \"" + family + "\" (morph, loc, stat, ih, ivh, cm, rlm, szm, dzm, ngt, ngl)");
    }
  }
  auto wanted = [&](const char* family) { return families.empty() || families.contains(family); };
  if (wanted("morph")) {
    MorphologyFeatures(r, out);
    MeshMorphologyFeatures(r, out);
    AutocorrelationFeatures(r, out);
  }
  if (wanted("loc")) LocalIntensityFeatures(r, out);
  if (wanted("stat")) IntensityStatistics(r, out);
  if (wanted("ih")) IntensityHistogram(r, out);
  if (wanted("ivh")) IntensityVolumeHistogram(ivh_levels != nullptr ? *ivh_levels : r, out, ivh_levels != nullptr ? std::nullopt : ivh);
  if (wanted("cm")) CooccurrenceFeatures(r, out);
  if (wanted("rlm")) RunLengthFeatures(r, out);
  if (wanted("szm")) SizeZoneFeatures(r, out);
  if (wanted("dzm")) DistanceZoneFeatures(r, out);
  if (wanted("ngt")) ToneDifferenceFeatures(r, out);
  if (wanted("ngl")) DependenceFeatures(r, out);
}

}  // namespace procnode::radiomics
