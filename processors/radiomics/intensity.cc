// IBSI 3.3-3.5: intensity statistics, intensity histogram, intensity-volume histogram.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

std::vector<double> InsideValues(const Region& r) {
  std::vector<double> values;
  for (std::size_t i = 0; i < r.mask.size(); ++i) {
    if (r.mask[i]) values.push_back(r.intensities[i]);
  }
  if (values.empty()) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<double> InsideLevels(const Region& r) {
  // Sorted by counting: the levels are 1..grey_levels.
  std::vector<std::size_t> count(static_cast<std::size_t>(std::max(r.grey_levels, 0)) + 2, 0);
  for (std::size_t i = 0; i < r.mask.size(); ++i) {
    if (r.mask[i]) ++count[static_cast<std::size_t>(std::clamp(r.levels[i], 0, r.grey_levels + 1))];
  }
  std::vector<double> levels;
  for (std::size_t level = 0; level < count.size(); ++level) levels.insert(levels.end(), count[level], static_cast<double>(level));
  if (levels.empty()) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  return levels;
}

double Quantile(const std::vector<double>& sorted, double p) {
  const double at = p * (sorted.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(at));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - below) * (sorted[above] - sorted[below]);
}

// The statistics IBSI's intensity and histogram families share, on sorted values, with `prefix`.
void Descriptive(const std::vector<double>& x, const std::string& prefix, FeatureSet& out) {
  const double n = static_cast<double>(x.size());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double m2 = 0, m3 = 0, m4 = 0, mad = 0;
  for (const double v : x) {
    const double d = v - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
    mad += std::abs(d);
  }
  m2 /= n, m3 /= n, m4 /= n, mad /= n;
  const double median = Quantile(x, 0.5), p10 = Quantile(x, 0.1), p90 = Quantile(x, 0.9);
  const double p25 = Quantile(x, 0.25), p75 = Quantile(x, 0.75);
  out.Set(prefix + "mean", mean);
  out.Set(prefix + "var", m2);
  out.Set(prefix + "skew", m2 > 0 ? m3 / std::pow(m2, 1.5) : NAN);
  out.Set(prefix + "kurt", m2 > 0 ? m4 / (m2 * m2) - 3 : NAN);
  out.Set(prefix + "median", median);
  out.Set(prefix + "min", x.front());
  out.Set(prefix + "p10", p10);
  out.Set(prefix + "p90", p90);
  out.Set(prefix + "max", x.back());
  out.Set(prefix + "iqr", p75 - p25);
  out.Set(prefix + "range", x.back() - x.front());
  out.Set(prefix + "mad", mad);
  // Robust mean absolute deviation: the values between the 10th and 90th percentiles.
  double robust_sum = 0, robust_n = 0;
  for (const double v : x) {
    if (v >= p10 && v <= p90) robust_sum += v, robust_n += 1;
  }
  const double robust_mean = robust_sum / robust_n;
  double rmad = 0;
  for (const double v : x) {
    if (v >= p10 && v <= p90) rmad += std::abs(v - robust_mean);
  }
  out.Set(prefix + "rmad", rmad / robust_n);
  double medad = 0;
  for (const double v : x) medad += std::abs(v - median);
  out.Set(prefix + "medad", medad / n);
  out.Set(prefix + "cov", mean != 0 ? std::sqrt(m2) / mean : NAN);
  out.Set(prefix + "qcod", p75 + p25 != 0 ? (p75 - p25) / (p75 + p25) : NAN);
}

std::vector<double> LevelCounts(const Region& r) {
  if (r.grey_levels < 1) throw Error(ErrorCode::kInvalidInput, "radiomics: no grey levels (discretise first)");
  std::vector<double> counts(r.grey_levels + 1, 0.0);  // index = level
  for (std::size_t i = 0; i < r.mask.size(); ++i) {
    if (!r.mask[i]) continue;
    if (r.levels[i] < 1 || r.levels[i] > r.grey_levels) {
      throw Error(ErrorCode::kInternal, "radiomics: grey level " + std::to_string(r.levels[i]) + " outside 1-" +
                                            std::to_string(r.grey_levels));
    }
    counts[r.levels[i]] += 1;
  }
  return counts;
}

}  // namespace

void FeatureSet::Set(const std::string& tag, double value) {
  if (std::isfinite(value)) {
    values[tag] = value;
    undefined.erase(tag);
  } else {
    values.erase(tag);
    undefined[tag] = "undefined for this region (a division by zero: constant intensities or too few voxels)";
  }
}

void IntensityStatistics(const Region& region, FeatureSet& out) {
  const std::vector<double> x = InsideValues(region);
  Descriptive(x, "stat_", out);
  double energy = 0;
  for (const double v : x) energy += v * v;
  out.Set("stat_energy", energy);
  out.Set("stat_rms", std::sqrt(energy / x.size()));
}

void IntensityHistogram(const Region& region, FeatureSet& out) {
  const std::vector<double> x = InsideLevels(region);
  Descriptive(x, "ih_", out);
  const std::vector<double> counts = LevelCounts(region);
  const double n = static_cast<double>(x.size());
  const int ng = region.grey_levels;
  int mode = 1;
  for (int i = 1; i <= ng; ++i) {
    if (counts[i] > counts[mode]) mode = i;
  }
  out.Set("ih_mode", mode);
  double entropy = 0, uniformity = 0;
  for (int i = 1; i <= ng; ++i) {
    const double p = counts[i] / n;
    if (p > 0) entropy -= p * std::log2(p);
    uniformity += p * p;
  }
  out.Set("ih_entropy", entropy);
  out.Set("ih_uniformity", uniformity);
  // The histogram's gradient: forward at the first bin, backward at the last, central between.
  if (ng < 2) {
    for (const char* tag : {"ih_max_grad", "ih_max_grad_g", "ih_min_grad", "ih_min_grad_g"}) {
      out.undefined[tag] = "a histogram of one grey level has no gradient";
    }
    return;
  }
  std::vector<double> gradient(ng + 1, 0.0);
  for (int i = 1; i <= ng; ++i) {
    if (i == 1) {
      gradient[i] = counts[2] - counts[1];
    } else if (i == ng) {
      gradient[i] = counts[ng] - counts[ng - 1];
    } else {
      gradient[i] = (counts[i + 1] - counts[i - 1]) / 2;
    }
  }
  int high = 1, low = 1;
  for (int i = 1; i <= ng; ++i) {
    if (gradient[i] > gradient[high]) high = i;
    if (gradient[i] < gradient[low]) low = i;
  }
  out.Set("ih_max_grad", gradient[high]);
  out.Set("ih_max_grad_g", high);
  out.Set("ih_min_grad", gradient[low]);
  out.Set("ih_min_grad_g", low);
}

void IntensityVolumeHistogram(const Region& region, FeatureSet& out, const std::optional<IvhBins>& bins) {
  const IvhBins b = bins ? *bins : IvhBins{1, static_cast<double>(region.grey_levels), 1};
  if (!(b.bin_width > 0) || !(b.high >= b.low)) throw Error(ErrorCode::kInvalidInput, "radiomics: bad intensity-volume histogram bins");
  // Bins 0..last: the discrete values low, low + width, ..., high; or the bins of width from low.
  const long last = b.discretise ? std::max(0L, static_cast<long>(std::ceil((b.high - b.low) / b.bin_width - 1e-9)) - 1)
                                 : std::lround((b.high - b.low) / b.bin_width);
  const double representative = b.discretise ? 0.5 * b.bin_width : 0.0;  // a bin's value: its centre
  if (last > 10000000) throw Error(ErrorCode::kInvalidInput, "radiomics: too many intensity-volume histogram bins");
  std::vector<double> counts(last + 1, 0.0);
  double n = 0;
  for (std::size_t i = 0; i < region.mask.size(); ++i) {
    if (!region.mask[i]) continue;
    const double x = bins ? region.intensities[i] : region.levels[i];
    counts[std::clamp<long>(static_cast<long>(std::floor((x - b.low) / b.bin_width)), 0, last)] += 1;
    n += 1;
  }
  if (n == 0) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  // Fraction of the volume at or above each bin, and each bin's place in the range.
  std::vector<double> volume(last + 2, 0.0);
  for (long k = last; k >= 0; --k) volume[k] = volume[k + 1] + counts[k] / n;
  auto fraction = [&](long k) { return last > 0 ? static_cast<double>(k) / last : 0.0; };
  auto volume_at = [&](double x) {  // V_x: at the lowest bin reaching x of the range
    for (long k = 0; k <= last; ++k) {
      if (fraction(k) >= x) return volume[k];
    }
    return 0.0;
  };
  auto intensity_at = [&](double x) {  // I_x: the lowest bin with at most x of the volume at or above it
    for (long k = 0; k <= last; ++k) {
      if (volume[k] <= x) return b.low + k * b.bin_width + representative;
    }
    return b.low + (last + 1) * b.bin_width + representative;
  };
  const double v10 = volume_at(0.1), v90 = volume_at(0.9), i10 = intensity_at(0.1), i90 = intensity_at(0.9);
  out.Set("ivh_v10", v10);
  out.Set("ivh_v90", v90);
  out.Set("ivh_i10", i10);
  out.Set("ivh_i90", i90);
  out.Set("ivh_diff_v10_v90", v10 - v90);
  out.Set("ivh_diff_i10_i90", i10 - i90);
  double auc = 0;  // trapezoids of the volume fraction over the range fraction
  for (long k = 0; k < last; ++k) auc += (fraction(k + 1) - fraction(k)) * (volume[k] + volume[k + 1]) / 2;
  out.Set("ivh_auc", auc);
}

}  // namespace procnode::radiomics
