// IBSI 3.6 (grey level co-occurrence) and 3.7 (grey level run length) matrices, with the six
// IBSI aggregations (features.h).
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

using Offset = std::array<int, 3>;

// Chebyshev distance 1, each direction once (its opposite is counted by symmetry or by the run).
const std::vector<Offset>& InPlaneDirections() {
  static const std::vector<Offset> d{{1, 0, 0}, {1, 1, 0}, {0, 1, 0}, {-1, 1, 0}};
  return d;
}

const std::vector<Offset>& SpaceDirections() {
  static const std::vector<Offset> d{{1, 0, 0},  {0, 1, 0},  {1, 1, 0},  {-1, 1, 0}, {0, 0, 1},   {1, 0, 1},  {-1, 0, 1},
                                     {0, 1, 1},  {0, -1, 1}, {1, 1, 1},  {-1, 1, 1}, {1, -1, 1}, {-1, -1, 1}};
  return d;
}

// A matrix of grey level x (grey level or run length), with the voxels it was counted over.
struct Matrix {
  std::size_t rows = 0, columns = 0;
  std::vector<double> cells;
  double voxels = 0;
  Matrix(std::size_t r, std::size_t c) : rows(r), columns(c), cells(r * c, 0.0) {}
  double& at(std::size_t i, std::size_t j) { return cells[i * columns + j]; }
  double at(std::size_t i, std::size_t j) const { return cells[i * columns + j]; }
  double Sum() const {
    double s = 0;
    for (const double c : cells) s += c;
    return s;
  }
  void Add(const Matrix& other) {  // into an empty (0 x 0) matrix: a copy
    if (cells.empty()) {
      *this = other;
      return;
    }
    for (std::size_t i = 0; i < cells.size(); ++i) cells[i] += other.cells[i];
    voxels += other.voxels;
  }
};

// The co-occurrences at `step` in `grid` (a slice or the volume, PaddedLevels).
Matrix Cooccurrence(const Region& r, const PaddedLevels& grid, long step) {
  Matrix m(r.grey_levels, r.grey_levels);
  grid.ForEachInRegion([&](long p) {
    m.voxels += 1;
    const int b = grid.levels[static_cast<std::size_t>(p + step)];
    if (b == 0) return;  // the neighbour is outside the region
    const int a = grid.levels[static_cast<std::size_t>(p)];
    m.at(a - 1, b - 1) += 1;
    m.at(b - 1, a - 1) += 1;  // symmetric: the pair seen from both ends
  });
  return m;
}

// The runs along `step` in `grid`: each counted from its first voxel (the one whose predecessor
// has another level or is outside), walked until the level changes (the border ends every run).
Matrix RunLengths(const Region& r, const PaddedLevels& grid, long step) {
  const std::size_t longest = std::max({r.dims[0], r.dims[1], r.dims[2]});
  Matrix m(r.grey_levels, longest);
  grid.ForEachInRegion([&](long p) {
    m.voxels += 1;
    const int level = grid.levels[static_cast<std::size_t>(p)];
    if (grid.levels[static_cast<std::size_t>(p - step)] == level) return;  // not where a run starts
    std::size_t length = 1;
    for (long n = p + step; grid.levels[static_cast<std::size_t>(n)] == level; n += step) ++length;
    m.at(level - 1, length - 1) += 1;
  });
  return m;
}

using Features = std::vector<std::pair<std::string, double>>;

Features GlcmFeatures(const Matrix& counts, int ng) {
  const double total = counts.Sum();
  std::vector<double> p(counts.cells.size());
  for (std::size_t c = 0; c < p.size(); ++c) p[c] = counts.cells[c] / total;
  auto P = [&](int i, int j) { return p[static_cast<std::size_t>(i - 1) * ng + (j - 1)]; };
  std::vector<double> row(ng + 1, 0.0), column(ng + 1, 0.0), sum(2 * ng + 1, 0.0), diff(ng, 0.0);
  double joint_max = 0, joint_avg = 0, joint_entropy = 0, energy = 0, contrast = 0, dissimilarity = 0, inv_diff = 0,
         inv_diff_norm = 0, inv_diff_mom = 0, inv_diff_mom_norm = 0, auto_corr = 0;
  for (int i = 1; i <= ng; ++i) {
    for (int j = 1; j <= ng; ++j) {
      const double v = P(i, j);
      if (v == 0) continue;
      row[i] += v, column[j] += v, sum[i + j] += v, diff[std::abs(i - j)] += v;
      joint_max = std::max(joint_max, v);
      joint_avg += i * v;
      joint_entropy -= v * std::log2(v);
      energy += v * v;
      const double d = i - j;
      contrast += d * d * v;
      dissimilarity += std::abs(d) * v;
      inv_diff += v / (1 + std::abs(d));
      inv_diff_norm += v / (1 + std::abs(d) / ng);
      inv_diff_mom += v / (1 + d * d);
      inv_diff_mom_norm += v / (1 + d * d / (static_cast<double>(ng) * ng));
      auto_corr += i * j * v;
    }
  }
  double joint_var = 0, mu_i = 0, mu_j = 0;
  for (int i = 1; i <= ng; ++i) mu_i += i * row[i], mu_j += i * column[i];
  double var_i = 0, var_j = 0, covariance = 0, tendency = 0, shade = 0, prominence = 0;
  for (int i = 1; i <= ng; ++i) {
    var_i += (i - mu_i) * (i - mu_i) * row[i];
    var_j += (i - mu_j) * (i - mu_j) * column[i];
    for (int j = 1; j <= ng; ++j) {
      const double v = P(i, j);
      if (v == 0) continue;
      joint_var += (i - joint_avg) * (i - joint_avg) * v;
      covariance += (i - mu_i) * (j - mu_j) * v;
      const double s = i + j - mu_i - mu_j;
      tendency += s * s * v;
      shade += s * s * s * v;
      prominence += s * s * s * s * v;
    }
  }
  double diff_avg = 0, diff_var = 0, diff_entropy = 0, inv_var = 0;
  for (int k = 0; k < ng; ++k) diff_avg += k * diff[k];
  for (int k = 0; k < ng; ++k) {
    diff_var += (k - diff_avg) * (k - diff_avg) * diff[k];
    if (diff[k] > 0) diff_entropy -= diff[k] * std::log2(diff[k]);
    if (k > 0) inv_var += diff[k] / (static_cast<double>(k) * k);
  }
  double sum_avg = 0, sum_var = 0, sum_entropy = 0;
  for (int k = 2; k <= 2 * ng; ++k) sum_avg += k * sum[k];
  for (int k = 2; k <= 2 * ng; ++k) {
    sum_var += (k - sum_avg) * (k - sum_avg) * sum[k];
    if (sum[k] > 0) sum_entropy -= sum[k] * std::log2(sum[k]);
  }
  // Information measures of correlation: entropies of the marginals and their product.
  double hx = 0, hy = 0, hxy1 = 0, hxy2 = 0;
  for (int i = 1; i <= ng; ++i) {
    if (row[i] > 0) hx -= row[i] * std::log2(row[i]);
    if (column[i] > 0) hy -= column[i] * std::log2(column[i]);
    for (int j = 1; j <= ng; ++j) {
      const double independent = row[i] * column[j];
      if (independent <= 0) continue;
      hxy1 -= P(i, j) * std::log2(independent);
      hxy2 -= independent * std::log2(independent);
    }
  }
  const double correlation = var_i > 0 && var_j > 0 ? covariance / std::sqrt(var_i * var_j) : NAN;
  const double info_corr1 = std::max(hx, hy) > 0 ? (joint_entropy - hxy1) / std::max(hx, hy) : NAN;
  const double info_corr2 = std::sqrt(std::max(0.0, 1 - std::exp(-2 * (hxy2 - joint_entropy))));
  return {{"joint_max", joint_max},
          {"joint_avg", joint_avg},
          {"joint_var", joint_var},
          {"joint_entr", joint_entropy},
          {"diff_avg", diff_avg},
          {"diff_var", diff_var},
          {"diff_entr", diff_entropy},
          {"sum_avg", sum_avg},
          {"sum_var", sum_var},
          {"sum_entr", sum_entropy},
          {"energy", energy},
          {"contrast", contrast},
          {"dissimilarity", dissimilarity},
          {"inv_diff", inv_diff},
          {"inv_diff_norm", inv_diff_norm},
          {"inv_diff_mom", inv_diff_mom},
          {"inv_diff_mom_norm", inv_diff_mom_norm},
          {"inv_var", inv_var},
          {"corr", correlation},
          {"auto_corr", auto_corr},
          {"clust_tend", tendency},
          {"clust_shade", shade},
          {"clust_prom", prominence},
          {"info_corr1", info_corr1},
          {"info_corr2", info_corr2}};
}

Features RunLengthMatrixFeatures(const Matrix& r, int) {
  const double runs = r.Sum();
  std::vector<double> per_level(r.rows, 0.0), per_length(r.columns, 0.0);
  double sre = 0, lre = 0, lgre = 0, hgre = 0, srlge = 0, srhge = 0, lrlge = 0, lrhge = 0, mu_i = 0, mu_j = 0, entropy = 0;
  for (std::size_t a = 0; a < r.rows; ++a) {
    for (std::size_t b = 0; b < r.columns; ++b) {
      const double v = r.at(a, b);
      if (v == 0) continue;
      const double i = static_cast<double>(a + 1), j = static_cast<double>(b + 1);
      per_level[a] += v, per_length[b] += v;
      sre += v / (j * j);
      lre += v * j * j;
      lgre += v / (i * i);
      hgre += v * i * i;
      srlge += v / (i * i * j * j);
      srhge += v * i * i / (j * j);
      lrlge += v * j * j / (i * i);
      lrhge += v * i * i * j * j;
      const double p = v / runs;
      mu_i += i * p, mu_j += j * p;
      entropy -= p * std::log2(p);
    }
  }
  double glnu = 0, rlnu = 0, gl_var = 0, rl_var = 0;
  for (const double c : per_level) glnu += c * c;
  for (const double c : per_length) rlnu += c * c;
  for (std::size_t a = 0; a < r.rows; ++a) {
    for (std::size_t b = 0; b < r.columns; ++b) {
      const double p = r.at(a, b) / runs;
      if (p == 0) continue;
      gl_var += (a + 1 - mu_i) * (a + 1 - mu_i) * p;
      rl_var += (b + 1 - mu_j) * (b + 1 - mu_j) * p;
    }
  }
  return {{"sre", sre / runs},        {"lre", lre / runs},       {"lgre", lgre / runs},          {"hgre", hgre / runs},
          {"srlge", srlge / runs},    {"srhge", srhge / runs},   {"lrlge", lrlge / runs},        {"lrhge", lrhge / runs},
          {"glnu", glnu / runs},      {"glnu_norm", glnu / (runs * runs)},
          {"rlnu", rlnu / runs},      {"rlnu_norm", rlnu / (runs * runs)},
          {"r_perc", runs / r.voxels}, {"gl_var", gl_var},       {"rl_var", rl_var},             {"rl_entr", entropy}};
}

// Averages features over matrices (each feature over the matrices where it is defined).
class Averager {
 public:
  void Add(const Features& features) {
    for (const auto& [name, value] : features) {
      if (order_.insert({name, order_.size()}).second) names_.push_back(name);
      if (!std::isfinite(value)) continue;
      sums_[name] += value;
      counts_[name] += 1;
    }
  }
  bool Empty() const { return counts_.empty(); }
  void Write(const std::string& prefix, const std::string& suffix, FeatureSet& out) const {
    for (const auto& name : names_) {
      const auto count = counts_.find(name);
      out.Set(prefix + name + suffix, count == counts_.end() ? NAN : sums_.at(name) / count->second);
    }
  }

 private:
  std::map<std::string, std::size_t> order_;
  std::vector<std::string> names_;
  std::map<std::string, double> sums_, counts_;
};

// The six IBSI aggregations of one matrix family.
void Aggregate(const Region& r, const std::string& prefix, const std::function<Matrix(const Region&, const PaddedLevels&, long)>& make,
               const std::function<Features(const Matrix&, int)>& features, FeatureSet& out) {
  if (r.grey_levels < 1) throw Error(ErrorCode::kInvalidInput, "radiomics: no grey levels (discretise first)");
  const long slices = static_cast<long>(r.dims[2]);
  const int ng = r.grey_levels;
  auto usable = [](const Matrix& m) { return m.Sum() > 0; };
  Averager avg_2d, comb_2d, avg_25d, avg_3d;
  std::vector<Matrix> per_direction(InPlaneDirections().size(), Matrix(0, 0));
  Matrix all_2d(0, 0);
  const bool planar = r.aggregation != Aggregation::kThreeD, volume = r.aggregation != Aggregation::kTwoD;
  for (long z = 0; planar && z < slices; ++z) {
    Matrix slice_merged(0, 0);
    const PaddedLevels grid(r, z, false);
    for (std::size_t d = 0; d < InPlaneDirections().size(); ++d) {
      const Matrix m = make(r, grid, grid.Step(InPlaneDirections()[d]));
      if (usable(m)) avg_2d.Add(features(m, ng));
      slice_merged.Add(m);
      per_direction[d].Add(m);
      all_2d.Add(m);
    }
    if (usable(slice_merged)) comb_2d.Add(features(slice_merged, ng));
  }
  for (const auto& m : per_direction) {
    if (!m.cells.empty() && usable(m)) avg_25d.Add(features(m, ng));
  }
  Matrix all_3d(0, 0);
  if (volume) {
    const PaddedLevels grid(r, -1, false);
    for (const auto& offset : SpaceDirections()) {
      const Matrix m = make(r, grid, grid.Step(offset));
      if (usable(m)) avg_3d.Add(features(m, ng));
      all_3d.Add(m);
    }
  }
  // Every feature of `suffix` undefined (no matrix had a pair or a run): named, with the reason.
  auto undefined = [&](const std::string& suffix) {
    Matrix names(ng, r.grey_levels > 0 ? std::max({r.dims[0], r.dims[1], r.dims[2]}) : 1);
    names.at(0, 0) = 1;
    names.voxels = 1;
    for (const auto& [name, value] : features(names, ng)) out.Set(prefix + name + suffix, NAN);
  };
  auto write_one = [&](const Matrix& m, const std::string& suffix) {
    if (m.cells.empty() || !usable(m)) return undefined(suffix);
    Averager one;
    one.Add(features(m, ng));
    one.Write(prefix, suffix, out);
  };
  auto write_average = [&](const Averager& a, const std::string& suffix) {
    if (a.Empty()) return undefined(suffix);
    a.Write(prefix, suffix, out);
  };
  if (planar) {
    write_average(avg_2d, "_2D_avg");
    write_average(comb_2d, "_2D_comb");
    write_average(avg_25d, "_2_5D_avg");
    write_one(all_2d, "_2_5D_comb");
  }
  if (volume) {
    write_average(avg_3d, "_3D_avg");
    write_one(all_3d, "_3D_comb");
  }
}

}  // namespace

void CooccurrenceFeatures(const Region& region, FeatureSet& out) {
  Aggregate(region, "cm_", Cooccurrence, GlcmFeatures, out);
}

void RunLengthFeatures(const Region& region, FeatureSet& out) {
  Aggregate(region, "rlm_", RunLengths, RunLengthMatrixFeatures, out);
}

}  // namespace procnode::radiomics
