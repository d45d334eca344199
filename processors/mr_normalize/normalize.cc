#include "processors/mr_normalize/normalize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/format.h"
#include "processors/lung/lung_backend.h"

namespace procnode::mr {
namespace {

struct Moments {
  double mean = 0, sd = 0;
};

// Mean and SD of the values inside `mask`; Error(kInvalidInput) naming `what` when it is empty.
Moments MomentsInside(const std::vector<float>& values, const std::vector<uint8_t>& mask, const char* what) {
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) sum += values[i], ++n;
  }
  if (n == 0) throw Error(ErrorCode::kInvalidInput, std::string("mr-normalize: ") + what + " is empty");
  const double mean = sum / n;
  double squares = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) squares += (values[i] - mean) * (values[i] - mean);
  }
  return {mean, std::sqrt(squares / n)};
}

void CheckMask(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  if (mask.size() != values.size()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the mask does not match the image");
}

std::vector<float> SortedInside(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  std::vector<float> inside = ValuesInside(values, mask);
  std::sort(inside.begin(), inside.end());
  return inside;
}

}  // namespace

double OtsuThreshold(const std::vector<float>& values) {
  if (values.empty()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: empty image");
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  const double lo = *lo_it, hi = *hi_it;
  if (!(hi > lo)) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the image is constant");
  constexpr int kBins = 256;
  std::array<double, kBins> histogram{};
  const double per_bin = kBins / (hi - lo);
  for (const float v : values) histogram[std::min(kBins - 1, static_cast<int>((v - lo) * per_bin))] += 1;
  double total = 0, weighted = 0;
  for (int b = 0; b < kBins; ++b) {
    total += histogram[b];
    weighted += b * histogram[b];
  }
  // The cut that maximises the between-class variance; the threshold is the upper edge of its bin.
  double below = 0, below_weighted = 0, best = -1;
  int best_bin = 0;
  for (int b = 0; b < kBins - 1; ++b) {
    below += histogram[b];
    below_weighted += b * histogram[b];
    const double above = total - below;
    if (below == 0 || above == 0) continue;
    const double mean_below = below_weighted / below, mean_above = (weighted - below_weighted) / above;
    const double between = below * above * (mean_below - mean_above) * (mean_below - mean_above);
    if (between > best) {
      best = between;
      best_bin = b;
    }
  }
  return lo + (best_bin + 1) / per_bin;
}

std::vector<uint8_t> ForegroundMask(const Volume& volume) {
  const auto& values = volume.voxels;
  if (values.size() != volume.VoxelCount() || values.empty()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: empty image");
  if (values.size() >= static_cast<std::size_t>(std::numeric_limits<int32_t>::max())) throw Error(ErrorCode::kInvalidInput, "mr-normalize: image too large");
  const double threshold = OtsuThreshold(values);
  std::vector<uint8_t> above(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) above[i] = values[i] > threshold;
  // Face-connected parts (the lung processor's CPU labelling: a part's label is its smallest
  // voxel index + 1), once for the voxels above the threshold and once for the rest.
  const lung::Grid grid{static_cast<int>(volume.dims[0]), static_cast<int>(volume.dims[1]), static_cast<int>(volume.dims[2])};
  const auto labeller = lung::MakeCpuLungBackend();
  std::vector<int32_t> labels(values.size());
  labeller->Label(above.data(), grid, true, labels.data());
  // The largest part above the threshold: the head, without noise specks and ghosts.
  std::vector<uint32_t> sizes(values.size() + 1, 0);
  for (const int32_t label : labels) ++sizes[label];
  sizes[0] = 0;
  const int32_t head = static_cast<int32_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  if (sizes[head] == 0) throw Error(ErrorCode::kInvalidInput, "mr-normalize: no voxel above the foreground threshold");
  // Holes: parts of the rest that do not touch the volume's border are filled.
  std::vector<uint8_t> rest(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) rest[i] = labels[i] != head;
  labeller->Label(rest.data(), grid, true, labels.data());
  std::vector<uint8_t> outside(values.size() + 1, 0);  // by label
  const auto& d = volume.dims;
  for (std::size_t z = 0; z < d[2]; ++z) {
    for (std::size_t y = 0; y < d[1]; ++y) {
      for (std::size_t x = 0; x < d[0]; ++x) {
        const bool edge = x == 0 || y == 0 || z == 0 || x + 1 == d[0] || y + 1 == d[1] || z + 1 == d[2];
        if (edge) outside[labels[(z * d[1] + y) * d[0] + x]] = 1;
      }
    }
  }
  outside[0] = 0;
  std::vector<uint8_t> best(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) best[i] = !outside[labels[i]];
  return best;
}

std::size_t CountInside(const std::vector<uint8_t>& mask) {
  return static_cast<std::size_t>(std::count_if(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; }));
}

double CoefficientOfVariation(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  CheckMask(values, mask);
  const Moments m = MomentsInside(values, mask, "the mask");
  return m.mean == 0 ? std::numeric_limits<double>::infinity() : m.sd / std::abs(m.mean);
}

std::vector<float> ValuesInside(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  CheckMask(values, mask);
  std::vector<float> inside;
  inside.reserve(CountInside(mask));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) inside.push_back(values[i]);
  }
  if (inside.empty()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the foreground is empty");
  return inside;
}

double Percentile(const std::vector<float>& sorted, double percent) {
  if (sorted.empty()) throw Error(ErrorCode::kInvalidInput, "mr-normalize: no values for a percentile");
  const double position = std::clamp(percent, 0.0, 100.0) / 100.0 * (sorted.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double t = position - below;
  return sorted[below] * (1 - t) + sorted[above] * t;
}

double IntensityMap::Apply(double x) const {
  if (from.size() < 2) return scale * x + offset;
  // The segment holding x; outside the landmarks, the end segments extended.
  std::size_t s = std::upper_bound(from.begin(), from.end(), x) - from.begin();
  s = std::clamp<std::size_t>(s, 1, from.size() - 1);
  const double x0 = from[s - 1], x1 = from[s], y0 = to[s - 1], y1 = to[s];
  return y0 + (x - x0) * (y1 - y0) / (x1 - x0);
}

void ApplyMap(const IntensityMap& map, std::vector<float>& values) {
  if (map.from.size() < 2) {
    for (float& v : values) v = static_cast<float>(map.scale * v + map.offset);
    return;
  }
  for (float& v : values) v = static_cast<float>(map.Apply(v));
}

IntensityMap ZScoreMap(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  CheckMask(values, mask);
  const Moments m = MomentsInside(values, mask, "the foreground");
  if (!(m.sd > 0)) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the foreground is constant");
  return {.scale = 1 / m.sd, .offset = -m.mean / m.sd};
}

IntensityMap PercentileMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, double low, double high) {
  if (!(low >= 0 && low < high && high <= 100)) {
    throw Error(ErrorCode::kInvalidInput, "mr-normalize: percentiles must satisfy 0 <= low < high <= 100");
  }
  const std::vector<float> sorted = SortedInside(values, mask);
  const double a = Percentile(sorted, low), b = Percentile(sorted, high);
  if (!(b > a)) {
    throw Error(ErrorCode::kInvalidInput, "mr-normalize: the foreground's " + FormatNumber("%g", low) + "th and " +
                                              FormatNumber("%g", high) + "th percentiles are equal");
  }
  return {.scale = 1 / (b - a), .offset = -a / (b - a)};
}

WhiteStripe WhiteStripeMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, Contrast contrast, double width) {
  if (!(width > 0 && width < 0.5)) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the stripe width must lie in (0, 0.5)");
  const std::vector<float> sorted = SortedInside(values, mask);
  // The histogram between the 1st and 99th percentiles (the tails hold vessels, fat and noise),
  // smoothed by a Gaussian of 2 % of that range: its peaks are the tissues.
  const double lo = Percentile(sorted, 1), hi = Percentile(sorted, 99);
  if (!(hi > lo)) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the foreground is (nearly) constant");
  constexpr int kBins = 400;
  std::vector<double> histogram(kBins, 0.0);
  const double per_bin = kBins / (hi - lo);
  for (const float v : sorted) {
    if (v < lo || v > hi) continue;
    histogram[std::min(kBins - 1, static_cast<int>((v - lo) * per_bin))] += 1;
  }
  const double sigma = 0.02 * kBins;
  const int reach = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> smooth(kBins, 0.0);
  for (int b = 0; b < kBins; ++b) {
    double sum = 0, weights = 0;
    for (int k = -reach; k <= reach; ++k) {
      if (b + k < 0 || b + k >= kBins) continue;
      const double w = std::exp(-0.5 * k * k / (sigma * sigma));
      sum += w * histogram[b + k];
      weights += w;
    }
    smooth[b] = sum / weights;
  }
  const double tallest = *std::max_element(smooth.begin(), smooth.end());
  int mode_bin = -1;
  for (int b = 1; b + 1 < kBins; ++b) {
    const bool peak = smooth[b] >= smooth[b - 1] && smooth[b] > smooth[b + 1] && smooth[b] >= 0.1 * tallest;
    if (!peak) continue;
    if (contrast == Contrast::kT1) {
      mode_bin = b;  // the last (brightest) tissue peak: white matter on T1
    } else if (mode_bin < 0 || smooth[b] > smooth[mode_bin]) {
      mode_bin = b;  // the tallest: white matter dominates the brain on T2 and FLAIR
    }
  }
  if (mode_bin < 0) throw Error(ErrorCode::kInvalidInput, "mr-normalize: WhiteStripe found no tissue peak in the foreground's histogram");
  WhiteStripe stripe;
  stripe.mode = lo + (mode_bin + 0.5) / per_bin;
  // The mode's quantile, and the stripe of quantiles around it.
  const double quantile =
      static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), static_cast<float>(stripe.mode)) - sorted.begin()) /
      sorted.size();
  stripe.low = Percentile(sorted, 100 * std::max(0.0, quantile - width));
  stripe.high = Percentile(sorted, 100 * std::min(1.0, quantile + width));
  double sum = 0, squares = 0;
  for (const float v : sorted) {
    if (v < stripe.low || v > stripe.high) continue;
    sum += v;
    squares += static_cast<double>(v) * v;
    ++stripe.voxels;
  }
  if (stripe.voxels < 2) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the white stripe holds fewer than 2 voxels");
  stripe.mean = sum / stripe.voxels;
  stripe.sd = std::sqrt(std::max(0.0, squares / stripe.voxels - stripe.mean * stripe.mean));
  if (!(stripe.sd > 0)) throw Error(ErrorCode::kInvalidInput, "mr-normalize: the white stripe is constant");
  stripe.map = {.scale = 1 / stripe.sd, .offset = -stripe.mean / stripe.sd};
  return stripe;
}

std::vector<uint8_t> StripeMask(const std::vector<float>& values, const std::vector<uint8_t>& mask, const WhiteStripe& stripe) {
  CheckMask(values, mask);
  std::vector<uint8_t> out(values.size(), 0);
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = mask[i] && values[i] >= stripe.low && values[i] <= stripe.high;
  return out;
}

std::vector<double> DefaultNyulPercentiles() { return {1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99}; }

namespace {

void CheckPercentiles(const std::vector<double>& percentiles) {
  if (percentiles.size() < 2) throw Error(ErrorCode::kInvalidInput, "Nyul model: at least two landmarks are needed");
  for (std::size_t i = 0; i < percentiles.size(); ++i) {
    if (!(percentiles[i] >= 0 && percentiles[i] <= 100) || (i > 0 && !(percentiles[i] > percentiles[i - 1]))) {
      throw Error(ErrorCode::kInvalidInput, "Nyul model: landmark percentiles must ascend within 0-100");
    }
  }
}

std::vector<double> Landmarks(const std::vector<float>& sorted, const std::vector<double>& percentiles, std::size_t image) {
  std::vector<double> marks;
  for (const double p : percentiles) marks.push_back(Percentile(sorted, p));
  for (std::size_t i = 1; i < marks.size(); ++i) {
    if (!(marks[i] > marks[i - 1])) {
      throw Error(ErrorCode::kInvalidInput, "Nyul: image " + std::to_string(image + 1) + "'s landmarks at the " +
                                                FormatNumber("%g", percentiles[i - 1]) + "th and " + FormatNumber("%g", percentiles[i]) +
                                                "th percentiles are equal (too few distinct intensities)");
    }
  }
  return marks;
}

}  // namespace

NyulModel TrainNyulModel(const std::vector<std::vector<float>>& foregrounds, const std::vector<double>& percentiles, double scale_min,
                         double scale_max) {
  CheckPercentiles(percentiles);
  if (foregrounds.empty()) throw Error(ErrorCode::kInvalidInput, "Nyul model: no training image");
  if (!(scale_max > scale_min)) throw Error(ErrorCode::kInvalidInput, "Nyul model: the standard scale is empty");
  NyulModel model{.percentiles = percentiles, .standard = std::vector<double>(percentiles.size(), 0.0)};
  for (std::size_t n = 0; n < foregrounds.size(); ++n) {
    std::vector<float> sorted = foregrounds[n];
    if (sorted.empty()) throw Error(ErrorCode::kInvalidInput, "Nyul model: training image " + std::to_string(n + 1) + " is empty");
    std::sort(sorted.begin(), sorted.end());
    const std::vector<double> marks = Landmarks(sorted, percentiles, n);
    const double a = marks.front(), b = marks.back();
    for (std::size_t i = 0; i < marks.size(); ++i) model.standard[i] += scale_min + (marks[i] - a) * (scale_max - scale_min) / (b - a);
  }
  for (double& s : model.standard) s /= foregrounds.size();
  model.trained_on = foregrounds.size();
  return model;
}

IntensityMap NyulMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, const NyulModel& model) {
  CheckPercentiles(model.percentiles);
  if (model.standard.size() != model.percentiles.size()) throw Error(ErrorCode::kInvalidInput, "Nyul model: landmark counts differ");
  const std::vector<float> sorted = SortedInside(values, mask);
  IntensityMap map;
  map.from = Landmarks(sorted, model.percentiles, 0);
  map.to = model.standard;
  return map;
}

nlohmann::json NyulModelJson(const NyulModel& model) {
  return {{"kind", "procnode-nyul-model"},
          {"version", 1},
          {"percentiles", model.percentiles},
          {"standard", model.standard},
          {"trained_on", model.trained_on}};
}

NyulModel NyulModelFromJson(const nlohmann::json& json) {
  if (!json.is_object() || json.value("kind", "") != "procnode-nyul-model") {
    throw Error(ErrorCode::kInvalidInput, "Nyul model: not a procnode Nyul model (\"kind\" is not \"procnode-nyul-model\")");
  }
  NyulModel model;
  try {
    model.percentiles = json.at("percentiles").get<std::vector<double>>();
    model.standard = json.at("standard").get<std::vector<double>>();
    model.trained_on = json.value("trained_on", std::size_t{0});
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidInput, std::string("Nyul model: ") + e.what());
  }
  CheckPercentiles(model.percentiles);
  if (model.standard.size() != model.percentiles.size()) throw Error(ErrorCode::kInvalidInput, "Nyul model: landmark counts differ");
  for (std::size_t i = 1; i < model.standard.size(); ++i) {
    if (!(model.standard[i] > model.standard[i - 1])) throw Error(ErrorCode::kInvalidInput, "Nyul model: standard landmarks must ascend");
  }
  return model;
}

}  // namespace procnode::mr
