// IBSI 3.1 image processing on a region (re-segmentation, discretisation) and 3.2 local intensity.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

void CheckRegion(const Region& r) {
  const std::size_t n = r.dims[0] * r.dims[1] * r.dims[2];
  if (r.mask.size() != n || r.intensities.size() != n) throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
}

}  // namespace

void Resegment(Region& region, double low, double high) {
  CheckRegion(region);
  if (!(low <= high)) throw Error(ErrorCode::kInvalidInput, "radiomics: the re-segmentation range is empty");
  if (region.morphological_mask.empty()) region.morphological_mask = region.mask;
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (region.mask[i] && (region.intensities[i] < low || region.intensities[i] > high)) region.mask[i] = 0;
  }
}

void DiscretiseFixedBinSize(Region& region, double width, double origin) {
  CheckRegion(region);
  if (!(width > 0)) throw Error(ErrorCode::kInvalidInput, "radiomics: the bin width must be positive");
  region.levels.assign(region.mask.size(), 0);
  int highest = 0;
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (!region.mask[i]) continue;
    const double level = std::floor((region.intensities[i] - origin) / width) + 1;
    if (level < 1 || level > 1e6) throw Error(ErrorCode::kInvalidInput, "radiomics: an intensity lies below the bin origin or too far above it");
    region.levels[i] = static_cast<int>(level);
    highest = std::max(highest, region.levels[i]);
  }
  if (highest == 0) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  region.grey_levels = highest;
}

void DiscretiseFixedBinNumber(Region& region, int bins) {
  CheckRegion(region);
  if (bins < 1) throw Error(ErrorCode::kInvalidInput, "radiomics: the bin number must be at least 1");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (region.mask[i]) lo = std::min(lo, region.intensities[i]), hi = std::max(hi, region.intensities[i]);
  }
  if (!(hi >= lo)) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  region.levels.assign(region.mask.size(), 0);
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (!region.mask[i]) continue;
    const int level = hi > lo ? static_cast<int>(std::floor(bins * (region.intensities[i] - lo) / (hi - lo))) + 1 : 1;
    region.levels[i] = std::min(level, bins);
  }
  region.grey_levels = bins;
}

void LocalIntensityFeatures(const Region& region, FeatureSet& out) {
  CheckRegion(region);
  const long nx = static_cast<long>(region.dims[0]), ny = static_cast<long>(region.dims[1]), nz = static_cast<long>(region.dims[2]);
  const double radius = std::cbrt(3.0 / (4.0 * M_PI)) * 10.0;  // mm: the sphere of 1 cm3
  // The sphere's voxel offsets, by their centres' distance.
  std::vector<std::array<long, 3>> sphere;
  const long ra = static_cast<long>(radius / region.spacing[0]), rb = static_cast<long>(radius / region.spacing[1]),
             rc = static_cast<long>(radius / region.spacing[2]);
  for (long c = -rc; c <= rc; ++c) {
    for (long b = -rb; b <= rb; ++b) {
      for (long a = -ra; a <= ra; ++a) {
        const double x = a * region.spacing[0], y = b * region.spacing[1], z = c * region.spacing[2];
        if (x * x + y * y + z * z <= radius * radius) sphere.push_back({a, b, c});
      }
    }
  }
  auto peak = [&](long i, long j, long k) {
    double sum = 0, n = 0;
    for (const auto& o : sphere) {
      const long a = i + o[0], b = j + o[1], c = k + o[2];
      if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
      sum += region.intensities[(c * ny + b) * nx + a];
      n += 1;
    }
    return sum / n;
  };
  double highest = -std::numeric_limits<double>::infinity();
  for (std::size_t v = 0; v < region.mask.size(); ++v) {
    if (region.mask[v]) highest = std::max(highest, region.intensities[v]);
  }
  if (!std::isfinite(highest)) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  double local = -std::numeric_limits<double>::infinity(), global = local;
  for (long k = 0; k < nz; ++k) {
    for (long j = 0; j < ny; ++j) {
      for (long i = 0; i < nx; ++i) {
        const std::size_t v = static_cast<std::size_t>((k * ny + j) * nx + i);
        if (!region.mask[v]) continue;
        const double mean = peak(i, j, k);
        global = std::max(global, mean);
        if (region.intensities[v] == highest) local = std::max(local, mean);
      }
    }
  }
  out.Set("loc_peak_loc", local);
  out.Set("loc_peak_glob", global);
}

}  // namespace procnode::radiomics
