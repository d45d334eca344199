// IBSI 3.8 (grey level size zone), 3.9 (grey level distance zone), 3.10 (neighbourhood grey tone
// difference) and 3.11 (neighbouring grey level dependence) matrices. Their aggregations:
//   _2D    a matrix per slice (in-plane neighbourhoods), features averaged over slices;
//   _2_5D  the slices' matrices merged into one;
//   _3D    one matrix of the volume (3D neighbourhoods).
// Zones are connected voxels of one grey level (8-connected in a slice, 26-connected in 3D); a
// zone's distance is its voxels' smallest city-block distance to the region's border (a voxel next
// to the outside or the image's edge is at 1; 4-connected steps in a slice, 6-connected in 3D).
// Neighbourhoods are at Chebyshev distance 1; a neighbour must lie in the region.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

// The neighbour offsets at Chebyshev distance 1 (8 in a slice, 26 in 3D), or the face neighbours
// (4 in a slice, 6 in 3D).
std::vector<std::array<int, 3>> Neighbours(bool three_d, bool faces_only) {
  std::vector<std::array<int, 3>> offsets;
  for (int c = three_d ? -1 : 0; c <= (three_d ? 1 : 0); ++c) {
    for (int b = -1; b <= 1; ++b) {
      for (int a = -1; a <= 1; ++a) {
        if (a == 0 && b == 0 && c == 0) continue;
        if (faces_only && std::abs(a) + std::abs(b) + std::abs(c) != 1) continue;
        offsets.push_back({a, b, c});
      }
    }
  }
  return offsets;
}

// A level x (size, distance or dependence) count matrix, with the voxels it was counted over.
struct CountMatrix {
  int levels = 0;
  std::size_t columns = 0;
  std::vector<double> cells;
  double voxels = 0;
  CountMatrix(int ng, std::size_t c) : levels(ng), columns(c), cells(static_cast<std::size_t>(ng) * c, 0.0) {}
  void Grow(std::size_t wanted) {
    if (wanted <= columns) return;
    std::vector<double> grown(static_cast<std::size_t>(levels) * wanted, 0.0);
    for (int i = 0; i < levels; ++i) {
      std::copy_n(cells.begin() + static_cast<long>(i * columns), columns, grown.begin() + static_cast<long>(i * wanted));
    }
    cells = std::move(grown);
    columns = wanted;
  }
  void Count(int level, std::size_t column) {  // level 1..ng, column 1..
    Grow(column);
    cells[static_cast<std::size_t>(level - 1) * columns + (column - 1)] += 1;
  }
  double at(int i, std::size_t j) const { return cells[static_cast<std::size_t>(i) * columns + j]; }
  double Sum() const {
    double s = 0;
    for (const double c : cells) s += c;
    return s;
  }
  void Add(const CountMatrix& other) {
    Grow(other.columns);
    for (int i = 0; i < levels; ++i) {
      for (std::size_t j = 0; j < other.columns; ++j) cells[static_cast<std::size_t>(i) * columns + j] += other.at(i, j);
    }
    voxels += other.voxels;
  }
};

// The padded grid's neighbour steps at Chebyshev distance 1, or to the face neighbours.
std::vector<long> Steps(const PaddedLevels& grid, bool three_d, bool faces_only) {
  std::vector<long> steps;
  for (const auto& o : Neighbours(three_d, faces_only)) steps.push_back(grid.Step(o));
  return steps;
}

// City-block distance of each voxel of the morphological mask to its border, in a slice or in 3D,
// on `grid`'s padded indices (0 outside).
std::vector<int> BorderDistance(const PaddedLevels& grid, bool three_d) {
  const std::vector<long> faces = Steps(grid, three_d, true);
  std::vector<int> distance(grid.shape.size(), 0);
  std::deque<long> queue;
  for (long p = 0; p < static_cast<long>(grid.shape.size()); ++p) {
    if (!grid.shape[p]) continue;
    for (const long step : faces) {
      if (!grid.shape[p + step]) {
        distance[p] = 1;
        queue.push_back(p);
        break;
      }
    }
  }
  while (!queue.empty()) {
    const long v = queue.front();
    queue.pop_front();
    for (const long step : faces) {
      const long n = v + step;
      if (grid.shape[n] && distance[n] == 0) {
        distance[n] = distance[v] + 1;
        queue.push_back(n);
      }
    }
  }
  return distance;
}

// Size zones (by_distance false) or distance zones (true) of a slice or the volume.
CountMatrix Zones(const Region& r, long z, bool by_distance) {
  const PaddedLevels grid(r, z, by_distance);
  const std::vector<long> steps = Steps(grid, z < 0, false);
  const std::vector<int> distance = by_distance ? BorderDistance(grid, z < 0) : std::vector<int>();
  std::vector<uint8_t> seen(grid.levels.size(), 0);
  CountMatrix m(r.grey_levels, 1);
  std::vector<long> stack;
  grid.ForEachInRegion([&](long start) {
    m.voxels += 1;
    if (seen[start]) return;
    const int level = grid.levels[start];
    std::size_t size = 0;
    int nearest = by_distance ? distance[start] : 0;
    stack.assign(1, start);
    seen[start] = 1;
    while (!stack.empty()) {
      const long v = stack.back();
      stack.pop_back();
      ++size;
      if (by_distance) nearest = std::min(nearest, distance[v]);
      for (const long step : steps) {
        const long n = v + step;
        if (grid.levels[n] != level || seen[n]) continue;
        seen[n] = 1;
        stack.push_back(n);
      }
    }
    m.Count(level, by_distance ? static_cast<std::size_t>(nearest) : size);
  });
  return m;
}

// Dependence counts: 1 + the neighbours of the same grey level (alpha 0), per voxel.
CountMatrix Dependence(const Region& r, long z) {
  const PaddedLevels grid(r, z, false);
  const std::vector<long> steps = Steps(grid, z < 0, false);
  CountMatrix m(r.grey_levels, 1);
  grid.ForEachInRegion([&](long p) {
    m.voxels += 1;
    const int level = grid.levels[p];
    std::size_t count = 1;
    for (const long step : steps) count += grid.levels[p + step] == level ? 1 : 0;
    m.Count(level, count);
  });
  return m;
}

// Neighbourhood grey tone differences: per grey level, the voxels with a neighbourhood (n_i) and
// the sum of |level - neighbourhood mean| over them (s_i).
struct ToneDifferences {
  std::vector<double> n, s;
  explicit ToneDifferences(int ng) : n(ng + 1, 0.0), s(ng + 1, 0.0) {}
  void Add(const ToneDifferences& o) {
    for (std::size_t i = 0; i < n.size(); ++i) n[i] += o.n[i], s[i] += o.s[i];
  }
  double Voxels() const {
    double total = 0;
    for (const double v : n) total += v;
    return total;
  }
};

ToneDifferences Tones(const Region& r, long z) {
  const PaddedLevels grid(r, z, false);
  const std::vector<long> steps = Steps(grid, z < 0, false);
  ToneDifferences t(r.grey_levels);
  grid.ForEachInRegion([&](long p) {
    double sum = 0, count = 0;
    for (const long step : steps) {
      const int neighbour = grid.levels[p + step];
      if (neighbour > 0) sum += neighbour, count += 1;
    }
    if (count == 0) return;  // no neighbourhood: left out
    const int level = grid.levels[p];
    t.n[level] += 1;
    t.s[level] += std::abs(level - sum / count);
  });
  return t;
}

using Features = std::vector<std::pair<std::string, double>>;

// The 16 features of a grey level x (size, distance, dependence) matrix, named by `names`:
// small/large emphasis, low/high grey level emphasis, their four combinations, grey level and
// column non-uniformity (plain and normalised), percentage, grey level and column variance, entropy.
Features CountFeatures(const CountMatrix& m, const std::array<const char*, 16>& names, bool energy) {
  const double total = m.Sum();
  std::vector<double> per_level(m.levels, 0.0), per_column(m.columns, 0.0);
  double e[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  double mu_i = 0, mu_j = 0, entropy = 0, squares = 0;
  for (int a = 0; a < m.levels; ++a) {
    for (std::size_t b = 0; b < m.columns; ++b) {
      const double v = m.at(a, b);
      if (v == 0) continue;
      const double i = a + 1.0, j = b + 1.0;
      per_level[a] += v, per_column[b] += v;
      e[0] += v / (j * j), e[1] += v * j * j, e[2] += v / (i * i), e[3] += v * i * i;
      e[4] += v / (i * i * j * j), e[5] += v * i * i / (j * j), e[6] += v * j * j / (i * i), e[7] += v * i * i * j * j;
      const double p = v / total;
      mu_i += i * p, mu_j += j * p;
      entropy -= p * std::log2(p);
      squares += p * p;
    }
  }
  double level_nu = 0, column_nu = 0, level_var = 0, column_var = 0;
  for (const double c : per_level) level_nu += c * c;
  for (const double c : per_column) column_nu += c * c;
  for (int a = 0; a < m.levels; ++a) {
    for (std::size_t b = 0; b < m.columns; ++b) {
      const double p = m.at(a, b) / total;
      if (p == 0) continue;
      level_var += (a + 1 - mu_i) * (a + 1 - mu_i) * p;
      column_var += (b + 1 - mu_j) * (b + 1 - mu_j) * p;
    }
  }
  Features f;
  for (int k = 0; k < 8; ++k) f.push_back({names[k], e[k] / total});
  f.push_back({names[8], level_nu / total});
  f.push_back({names[9], level_nu / (total * total)});
  f.push_back({names[10], column_nu / total});
  f.push_back({names[11], column_nu / (total * total)});
  f.push_back({names[12], total / m.voxels});
  f.push_back({names[13], level_var});
  f.push_back({names[14], column_var});
  f.push_back({names[15], entropy});
  if (energy) f.push_back({"dc_energy", squares});
  return f;
}

Features ToneFeatures(const ToneDifferences& t, int ng) {
  const double voxels = t.Voxels();
  std::vector<double> p(ng + 1, 0.0);
  int present = 0;
  double weighted = 0, s_total = 0;
  for (int i = 1; i <= ng; ++i) {
    p[i] = t.n[i] / voxels;
    if (p[i] > 0) ++present;
    weighted += p[i] * t.s[i];
    s_total += t.s[i];
  }
  double spread = 0, busy_denominator = 0, complexity = 0, strength = 0;
  for (int i = 1; i <= ng; ++i) {
    if (p[i] == 0) continue;
    for (int j = 1; j <= ng; ++j) {
      if (p[j] == 0) continue;
      spread += p[i] * p[j] * (i - j) * (i - j);
      busy_denominator += std::abs(i * p[i] - j * p[j]);
      complexity += std::abs(i - j) * (p[i] * t.s[i] + p[j] * t.s[j]) / (p[i] + p[j]);
      strength += (p[i] + p[j]) * (i - j) * (i - j);
    }
  }
  const double contrast = present > 1 ? spread / (present * (present - 1.0)) * s_total / voxels : NAN;
  return {{"coarseness", weighted > 0 ? 1 / weighted : NAN},
          {"contrast", contrast},
          {"busyness", busy_denominator > 0 ? weighted / busy_denominator : NAN},
          {"complexity", complexity / voxels},
          {"strength", s_total > 0 ? strength / s_total : NAN}};
}

// Writes the features of each slice averaged (_2D), of the merged slices (_2_5D) and of the volume
// (_3D); a family whose matrices are all empty is written undefined.
template <typename M>
void SliceVolumeAggregation(const Region& r, const std::string& prefix, const std::function<M(long)>& make,
                            const std::function<bool(const M&)>& usable, const std::function<Features(const M&)>& features,
                            const std::function<M()>& empty, FeatureSet& out) {
  if (r.grey_levels < 1) throw Error(ErrorCode::kInvalidInput, "radiomics: no grey levels (discretise first)");
  std::map<std::string, double> sums, counts;
  std::vector<std::string> names;
  for (const auto& [name, value] : features(empty())) names.push_back(name);
  const bool planar = r.aggregation != Aggregation::kThreeD, volume = r.aggregation != Aggregation::kTwoD;
  M merged = empty();
  for (long z = 0; planar && z < static_cast<long>(r.dims[2]); ++z) {
    const M slice = make(z);
    merged.Add(slice);
    if (!usable(slice)) continue;
    for (const auto& [name, value] : features(slice)) {
      if (!std::isfinite(value)) continue;
      sums[name] += value;
      counts[name] += 1;
    }
  }
  if (planar) {
    for (const auto& name : names) out.Set(prefix + name + "_2D", counts.contains(name) ? sums[name] / counts[name] : NAN);
  }
  auto write = [&](const M& m, const std::string& suffix) {
    if (!usable(m)) {
      for (const auto& name : names) out.Set(prefix + name + suffix, NAN);
      return;
    }
    for (const auto& [name, value] : features(m)) out.Set(prefix + name + suffix, value);
  };
  if (planar) write(merged, "_2_5D");
  if (volume) write(make(-1), "_3D");
}

constexpr std::array<const char*, 16> kSizeZoneNames{"sze",  "lze",       "lgze", "hgze",      "szlge",  "szhge",  "lzlge",   "lzhge",
                                                     "glnu", "glnu_norm", "zsnu", "zsnu_norm", "z_perc", "gl_var", "zs_var", "zs_entr"};
constexpr std::array<const char*, 16> kDistanceZoneNames{"sde",  "lde",       "lgze", "hgze",      "sdlge",  "sdhge",  "ldlge",  "ldhge",
                                                         "glnu", "glnu_norm", "zdnu", "zdnu_norm", "z_perc", "gl_var", "zd_var", "zd_entr"};
constexpr std::array<const char*, 16> kDependenceNames{"lde",  "hde",       "lgce", "hgce",      "ldlge",   "ldhge",  "hdlge",  "hdhge",
                                                       "glnu", "glnu_norm", "dcnu", "dcnu_norm", "dc_perc", "gl_var", "dc_var", "dc_entr"};

void CountFamily(const Region& r, const std::string& prefix, const std::function<CountMatrix(long)>& make,
                 const std::array<const char*, 16>& names, bool energy, FeatureSet& out) {
  SliceVolumeAggregation<CountMatrix>(
      r, prefix, make, [](const CountMatrix& m) { return m.Sum() > 0; },
      [&](const CountMatrix& m) { return CountFeatures(m, names, energy); }, [&] { return CountMatrix(r.grey_levels, 1); }, out);
}

}  // namespace

void SizeZoneFeatures(const Region& region, FeatureSet& out) {
  CountFamily(region, "szm_", [&](long z) { return Zones(region, z, false); }, kSizeZoneNames, false, out);
}

void DistanceZoneFeatures(const Region& region, FeatureSet& out) {
  CountFamily(region, "dzm_", [&](long z) { return Zones(region, z, true); }, kDistanceZoneNames, false, out);
}

void DependenceFeatures(const Region& region, FeatureSet& out) {
  CountFamily(region, "ngl_", [&](long z) { return Dependence(region, z); }, kDependenceNames, true, out);
}

void ToneDifferenceFeatures(const Region& region, FeatureSet& out) {
  const int ng = region.grey_levels;
  SliceVolumeAggregation<ToneDifferences>(
      region, "ngt_", [&](long z) { return Tones(region, z); }, [](const ToneDifferences& t) { return t.Voxels() > 0; },
      [ng](const ToneDifferences& t) { return ToneFeatures(t, ng); }, [ng] { return ToneDifferences(ng); }, out);
}

}  // namespace procnode::radiomics
