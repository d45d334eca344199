#include "processors/radiomics/extraction.h"

#include <algorithm>
#include <array>
#include <cmath>
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

namespace {

// The region cut to its morphological mask's bounding box and `margin` voxels around it (within
// the grid): no feature looks further (the local intensity sphere is the widest), and the families
// that walk the grid then walk only this.
Region Crop(const Region& r, const std::array<std::size_t, 3>& margin) {
  const auto box = BoundingBox(r.morphological_mask.empty() ? r.mask : r.morphological_mask, r.dims);
  if (!box) return r;  // empty: the families say so
  const std::size_t nx = r.dims[0], ny = r.dims[1];
  const auto& [lo, hi] = *box;
  std::array<std::size_t, 3> from{}, size{};
  for (int a = 0; a < 3; ++a) {
    from[a] = lo[a] > margin[a] ? lo[a] - margin[a] : 0;
    size[a] = std::min(r.dims[a] - 1, hi[a] + margin[a]) - from[a] + 1;
  }
  if (size == r.dims) return r;
  Region c;
  c.dims = size;
  c.spacing = r.spacing;
  c.grey_levels = r.grey_levels;
  const std::size_t n = size[0] * size[1] * size[2];
  c.mask.resize(n);
  c.intensities.resize(n);
  if (!r.levels.empty()) c.levels.resize(n);
  if (!r.morphological_mask.empty()) c.morphological_mask.resize(n);
  for (std::size_t k = 0; k < size[2]; ++k) {
    for (std::size_t j = 0; j < size[1]; ++j) {
      const std::size_t to = (k * size[1] + j) * size[0];
      const std::size_t at = ((k + from[2]) * ny + j + from[1]) * nx + from[0];
      std::copy_n(&r.mask[at], size[0], &c.mask[to]);
      std::copy_n(&r.intensities[at], size[0], &c.intensities[to]);
      if (!r.levels.empty()) std::copy_n(&r.levels[at], size[0], &c.levels[to]);
      if (!r.morphological_mask.empty()) std::copy_n(&r.morphological_mask[at], size[0], &c.morphological_mask[to]);
    }
  }
  return c;
}

}  // namespace

FeatureSet Extract(const Region& input, const Settings& s) {
  // Local intensity reaches 6.2 mm (the 1 cm3 sphere) past the region; one voxel more for safety.
  constexpr double kMarginMm = 6.3;
  auto margin = [](const std::array<double, 3>& spacing) { return VoxelsCovering(kMarginMm, spacing); };
  // On the native grid the region is cut out first (no copy of the whole image); an interpolated
  // grid is aligned on the whole image's centre (IBSI), so it is cut out after.
  Region r;
  if (s.interpolation) {
    Interpolation near = *s.interpolation;
    near.near_region_mm = kMarginMm;  // only what the cut below keeps is interpolated
    r = Interpolate(input, near);
  } else {
    r = Crop(input, margin(input.spacing));
  }
  if (s.range) Resegment(r, s.range->first, s.range->second);
  if (s.outlier_sigmas) FilterOutliers(r, *s.outlier_sigmas);
  if (s.interpolation) r = Crop(r, margin(r.spacing));
  r.aggregation = s.aggregation;
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
