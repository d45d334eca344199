// IBSI 3.1 image processing on a region (re-segmentation, discretisation) and 3.2 local intensity.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

void CheckRegion(const Region& r) {
  const std::size_t n = r.dims[0] * r.dims[1] * r.dims[2];
  if (r.mask.size() != n || r.intensities.size() != n) throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
}

// Where new voxel m of an axis of n_new lies in the old axis's index units (centres aligned).
double OldIndex(long m, long n_old, long n_new, double old_spacing, double new_spacing) {
  return (n_old - 1) / 2.0 + (m - (n_new - 1) / 2.0) * new_spacing / old_spacing;
}

// Cubic B-spline weights for the four coefficients around fraction t.
std::array<double, 4> CubicWeights(double t) {
  const double u = 1 - t;
  return {u * u * u / 6, (3 * t * t * t - 6 * t * t + 4) / 6, (-3 * t * t * t + 3 * t * t + 3 * t + 1) / 6, t * t * t / 6};
}

// Turns samples into cubic B-spline coefficients along one axis (Unser's recursive filter, pole
// sqrt(3) - 2, mirror boundaries), so that the spline through them interpolates the samples.
void SplinePrefilter(std::vector<double>& data, const std::array<long, 3>& n, int axis) {
  const double z = std::sqrt(3.0) - 2;
  const long length = n[axis];
  if (length < 2) return;
  const long stride = axis == 0 ? 1 : axis == 1 ? n[0] : n[0] * n[1];
  const long lines = n[0] * n[1] * n[2] / length;
  std::vector<double> c(length);
  for (long line = 0; line < lines; ++line) {
    // The first sample of this line: lines run along `axis`, the other two axes enumerate them.
    long start = 0;
    if (axis == 0) {
      start = line * n[0];
    } else if (axis == 1) {
      start = (line / n[0]) * n[0] * n[1] + line % n[0];
    } else {
      start = line;
    }
    for (long k = 0; k < length; ++k) c[k] = 6 * data[start + k * stride];
    // Causal initialisation: the mirrored sum, truncated where z^k is negligible.
    double sum = c[0], power = z;
    for (long k = 1; k < length && std::abs(power) > 1e-12; ++k, power *= z) sum += power * c[k];
    c[0] = sum;
    for (long k = 1; k < length; ++k) c[k] += z * c[k - 1];
    c[length - 1] = z / (z * z - 1) * (c[length - 1] + z * c[length - 2]);
    for (long k = length - 2; k >= 0; --k) c[k] = z * (c[k + 1] - c[k]);
    for (long k = 0; k < length; ++k) data[start + k * stride] = c[k];
  }
}

}  // namespace

Region Interpolate(const Region& region, const Interpolation& how) {
  CheckRegion(region);
  Region out;
  std::array<long, 3> n_old{}, n_new{};
  for (int a = 0; a < 3; ++a) {
    n_old[a] = static_cast<long>(region.dims[a]);
    const bool keep = how.in_plane && a == 2;
    if (!keep && !(how.spacing[a] > 0)) throw Error(ErrorCode::kInvalidInput, "radiomics: the interpolation spacing must be positive");
    out.spacing[a] = keep ? region.spacing[a] : how.spacing[a];
    n_new[a] = keep ? n_old[a] : static_cast<long>(std::ceil(n_old[a] * region.spacing[a] / out.spacing[a] - 1e-9));
    out.dims[a] = static_cast<std::size_t>(n_new[a]);
  }
  const std::vector<uint8_t>& shape = region.morphological_mask.empty() ? region.mask : region.morphological_mask;
  const std::size_t count = out.dims[0] * out.dims[1] * out.dims[2];
  out.intensities.assign(count, 0.0);
  out.mask.assign(count, 0);
  // Per axis: the old sample indices and weights of each new coordinate (linear: 2, cubic: 4).
  struct Taps {
    std::vector<std::array<long, 4>> index;
    std::vector<std::array<double, 4>> linear, cubic;
  };
  std::array<Taps, 3> taps;
  for (int a = 0; a < 3; ++a) {
    for (long m = 0; m < n_new[a]; ++m) {
      const double u = std::clamp(OldIndex(m, n_old[a], n_new[a], region.spacing[a], out.spacing[a]), 0.0, n_old[a] - 1.0);
      const long base = static_cast<long>(std::floor(u));
      const double t = u - base;
      std::array<long, 4> index{};
      for (int k = 0; k < 4; ++k) index[k] = std::clamp(base - 1 + k, 0L, n_old[a] - 1);  // edges repeat
      taps[a].index.push_back(index);
      taps[a].linear.push_back({0, 1 - t, t, 0});
      taps[a].cubic.push_back(CubicWeights(t));
    }
  }
  // Cubic: the image as B-spline coefficients (IBSI's "tricubic spline"); linear: the samples.
  std::vector<double> coefficients;
  if (how.cubic) {
    coefficients = region.intensities;
    for (int a = 0; a < 3; ++a) {
      if (!(how.in_plane && a == 2)) SplinePrefilter(coefficients, n_old, a);
    }
  }
  const std::vector<double>& samples = how.cubic ? coefficients : region.intensities;
  const long nx = n_old[0], ny = n_old[1];
  // The new voxels to compute: all, or (near_region_mm) those whose linear taps can reach the
  // region's box on the old grid (the new mask is empty elsewhere), widened by the margin.
  std::array<long, 3> from{0, 0, 0}, to{n_new[0] - 1, n_new[1] - 1, n_new[2] - 1};
  if (how.near_region_mm) {
    const auto box = BoundingBox(shape, region.dims);
    if (!box) return out;  // an empty region: nothing can be near it
    for (int a = 0; a < 3; ++a) {
      const long lo = static_cast<long>(box->lo[a]), hi = static_cast<long>(box->hi[a]);
      long first = n_new[a], last = -1;
      for (long m = 0; m < n_new[a]; ++m) {
        if (taps[a].index[m][2] >= lo && taps[a].index[m][1] <= hi) first = std::min(first, m), last = std::max(last, m);
      }
      if (last < 0) return out;
      const long margin = static_cast<long>(VoxelsCovering(*how.near_region_mm, out.spacing)[a]);
      from[a] = std::max(0L, first - margin);
      to[a] = std::min(n_new[a] - 1, last + margin);
    }
  }
  for (long k = from[2]; k <= to[2]; ++k) {
    for (long j = from[1]; j <= to[1]; ++j) {
      for (long i = from[0]; i <= to[0]; ++i) {
        const auto& wx = how.cubic ? taps[0].cubic[i] : taps[0].linear[i];
        const auto& wy = how.cubic ? taps[1].cubic[j] : taps[1].linear[j];
        const auto& wz = how.cubic && !how.in_plane ? taps[2].cubic[k] : taps[2].linear[k];
        const auto& lx = taps[0].linear[i];
        const auto& ly = taps[1].linear[j];
        const auto& lz = taps[2].linear[k];
        double value = 0, inside = 0;
        const int first = how.cubic ? 0 : 1, last = how.cubic ? 3 : 2;  // linear: the two middle taps
        for (int c = first; c <= last; ++c) {
          for (int b = first; b <= last; ++b) {
            for (int a = first; a <= last; ++a) {
              const double w = wx[a] * wy[b] * wz[c], lw = lx[a] * ly[b] * lz[c];
              if (w == 0 && lw == 0) continue;
              const std::size_t v = static_cast<std::size_t>((taps[2].index[k][c] * ny + taps[1].index[j][b]) * nx + taps[0].index[i][a]);
              value += w * samples[v];
              inside += lw * (shape[v] ? 1.0 : 0.0);
            }
          }
        }
        const std::size_t o = static_cast<std::size_t>((k * n_new[1] + j) * n_new[0] + i);
        out.intensities[o] = how.round ? std::round(value) : value;
        out.mask[o] = inside >= how.partial_volume - 1e-12;
      }
    }
  }
  return out;
}

std::array<std::size_t, 3> VoxelsCovering(double mm, const std::array<double, 3>& spacing) {
  std::array<std::size_t, 3> m{};
  for (int a = 0; a < 3; ++a) m[a] = static_cast<std::size_t>(std::ceil(mm / std::max(spacing[a], 1e-3))) + 1;
  return m;
}

void FilterOutliers(Region& region, double sigmas) {
  CheckRegion(region);
  double sum = 0, squares = 0, n = 0;
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (!region.mask[i]) continue;
    sum += region.intensities[i];
    squares += region.intensities[i] * region.intensities[i];
    n += 1;
  }
  if (n == 0) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  const double mean = sum / n, sd = std::sqrt(std::max(0.0, squares / n - mean * mean));
  Resegment(region, mean - sigmas * sd, mean + sigmas * sd);
}

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

std::optional<Box> BoundingBox(const std::vector<uint8_t>& mask, const std::array<std::size_t, 3>& dims) {
  const std::size_t nx = dims[0], ny = dims[1], nz = dims[2];
  Box box{{nx, ny, nz}, {0, 0, 0}};
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      const uint8_t* row = &mask[(k * ny + j) * nx];
      const uint8_t* first = std::find_if(row, row + nx, [](uint8_t m) { return m != 0; });
      if (first == row + nx) continue;
      const auto last = std::find_if(std::make_reverse_iterator(row + nx), std::make_reverse_iterator(first + 1),
                                     [](uint8_t m) { return m != 0; });
      box.lo[0] = std::min(box.lo[0], static_cast<std::size_t>(first - row));
      box.hi[0] = std::max(box.hi[0], static_cast<std::size_t>(last.base() - 1 - row));
      box.lo[1] = std::min(box.lo[1], j), box.hi[1] = std::max(box.hi[1], j);
      box.lo[2] = std::min(box.lo[2], k), box.hi[2] = std::max(box.hi[2], k);
    }
  }
  if (box.lo[0] > box.hi[0]) return std::nullopt;
  return box;
}

PaddedLevels::PaddedLevels(const Region& r, long z, bool with_shape) {
  const long nx = static_cast<long>(r.dims[0]), ny = static_cast<long>(r.dims[1]), nz = static_cast<long>(r.dims[2]);
  const bool three_d = z < 0;
  if (r.mask.size() != static_cast<std::size_t>(nx * ny * nz) || r.levels.size() != r.mask.size() || (!three_d && z >= nz)) {
    throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
  }
  px = nx + 2, py = ny + 2, pz = three_d ? nz + 2 : 1;
  const auto size = static_cast<std::size_t>(px * py * pz);
  levels.assign(size, 0);
  if (with_shape) shape.assign(size, 0);
  const std::vector<uint8_t>& morphological = r.morphological_mask.empty() ? r.mask : r.morphological_mask;
  for (long k = three_d ? 0 : z; k < (three_d ? nz : z + 1); ++k) {
    for (long j = 0; j < ny; ++j) {
      const auto from = static_cast<std::size_t>((k * ny + j) * nx);
      const auto to = static_cast<std::size_t>(((three_d ? k + 1 : 0) * py + j + 1) * px + 1);
      for (std::size_t i = 0; i < static_cast<std::size_t>(nx); ++i) {
        if (r.mask[from + i]) {
          const int level = r.levels[from + i];
          if (level < 1 || level > r.grey_levels) throw Error(ErrorCode::kInvalidInput, "radiomics: a voxel of the region has no grey level (discretise first)");
          levels[to + i] = level;
        }
        if (with_shape) shape[to + i] = morphological[from + i] ? 1 : 0;
      }
    }
  }
}

void LocalIntensityFeatures(const Region& region, FeatureSet& out) {
  CheckRegion(region);
  const long nx = static_cast<long>(region.dims[0]), ny = static_cast<long>(region.dims[1]), nz = static_cast<long>(region.dims[2]);
  const double radius = std::cbrt(3.0 / (4.0 * M_PI)) * 10.0;  // mm: the sphere of 1 cm3
  // The sphere as rows along x: for each (y, z) offset, the half-width of the voxel centres within
  // the radius. A row's sum is a difference of the image row's prefix sums, so each voxel costs
  // one step per sphere row instead of one per sphere voxel.
  struct SphereRow {
    long b, c, half;
  };
  std::vector<SphereRow> rows;
  const long ra = static_cast<long>(radius / region.spacing[0]), rb = static_cast<long>(radius / region.spacing[1]),
             rc = static_cast<long>(radius / region.spacing[2]);
  for (long c = -rc; c <= rc; ++c) {
    for (long b = -rb; b <= rb; ++b) {
      long half = -1;
      for (long a = 0; a <= ra; ++a) {
        const double x = a * region.spacing[0], y = b * region.spacing[1], z = c * region.spacing[2];
        if (x * x + y * y + z * z <= radius * radius) half = a;
      }
      if (half >= 0) rows.push_back({b, c, half});
    }
  }
  std::vector<double> prefix(static_cast<std::size_t>(ny * nz * (nx + 1)), 0.0);
  for (long r = 0; r < ny * nz; ++r) {
    double* p = &prefix[static_cast<std::size_t>(r * (nx + 1))];
    const double* row = &region.intensities[static_cast<std::size_t>(r * nx)];
    for (long i = 0; i < nx; ++i) p[i + 1] = p[i] + row[i];
  }
  double highest = -std::numeric_limits<double>::infinity();
  for (std::size_t v = 0; v < region.mask.size(); ++v) {
    if (region.mask[v]) highest = std::max(highest, region.intensities[v]);
  }
  if (!std::isfinite(highest)) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  double local = -std::numeric_limits<double>::infinity(), global = local;
  // Per image row, the sphere's rows that lie inside the image around it (found once per row, not
  // per voxel): each voxel's sum then needs only the clamping along x.
  struct Line {
    const double* prefix;
    long half;
  };
  std::vector<Line> lines;
  for (long k = 0; k < nz; ++k) {
    for (long j = 0; j < ny; ++j) {
      const uint8_t* mask = &region.mask[static_cast<std::size_t>((k * ny + j) * nx)];
      if (std::all_of(mask, mask + nx, [](uint8_t m) { return m == 0; })) continue;
      lines.clear();
      for (const SphereRow& o : rows) {
        const long b = j + o.b, c = k + o.c;
        if (b < 0 || c < 0 || b >= ny || c >= nz) continue;
        lines.push_back({&prefix[static_cast<std::size_t>((c * ny + b) * (nx + 1))], o.half});
      }
      const double* intensities = &region.intensities[static_cast<std::size_t>((k * ny + j) * nx)];
      for (long i = 0; i < nx; ++i) {
        if (!mask[i]) continue;
        double sum = 0, n = 0;
        for (const Line& line : lines) {
          const long from = std::max(0L, i - line.half), to = std::min(nx - 1, i + line.half);
          sum += line.prefix[to + 1] - line.prefix[from];
          n += static_cast<double>(to - from + 1);
        }
        const double mean = sum / n;
        global = std::max(global, mean);
        if (intensities[i] == highest) local = std::max(local, mean);
      }
    }
  }
  out.Set("loc_peak_loc", local);
  out.Set("loc_peak_glob", global);
}

}  // namespace procnode::radiomics
