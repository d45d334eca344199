// MR intensity normalization (no ITK): the foreground mask (Otsu's threshold, the head's largest
// connected part, holes filled), and the four methods of the mr-normalize processor, each a map
// x -> a * x + b or a piecewise-linear map fitted on the foreground:
//   z-score      mean 0 and SD 1 within the foreground;
//   percentile   the foreground's low percentile to 0 and its high percentile to 1 (not clipped);
//   WhiteStripe  z-score against normal-appearing white matter: the voxels whose foreground
//                quantile lies within `width` of the white-matter mode's (Shinohara et al. 2014,
//                NeuroImage Clin 6:9-19); the mode is the highest-intensity peak of the smoothed
//                histogram for T1, the tallest for T2 and FLAIR;
//   Nyul         histogram standardisation (Nyul, Udupa, Zhang 2000, IEEE TMI 19:143-150): the
//                image's landmark percentiles mapped piecewise linearly onto a trained model's
//                (TrainNyulModel), the ends extended with the first and last segment's slope.
// Every function is pure and thread-safe; masks are one byte per voxel (non-zero: inside).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode::mr {

// Otsu's threshold over the volume's histogram (256 bins between its minimum and maximum).
double OtsuThreshold(const std::vector<float>& values);

// The foreground: voxels above Otsu's threshold, the largest 6-connected part of them, with the
// enclosed background (holes not connected to the volume's border) filled. Error(kInvalidInput)
// when nothing is above the threshold (a constant image).
std::vector<uint8_t> ForegroundMask(const Volume& volume);

std::size_t CountInside(const std::vector<uint8_t>& mask);

// Standard deviation over mean of the values inside `mask` (a mean of 0: infinity).
double CoefficientOfVariation(const std::vector<float>& values, const std::vector<uint8_t>& mask);

// The values inside `mask`, for the percentile helpers (at least one, else Error(kInvalidInput)).
std::vector<float> ValuesInside(const std::vector<float>& values, const std::vector<uint8_t>& mask);

// Percentiles (0-100) of `sorted` (ascending, non-empty), linearly interpolated.
double Percentile(const std::vector<float>& sorted, double percent);

// A normalization: y = scale * x + offset, or the piecewise-linear map from `from` to `to`
// (both ascending, same length >= 2) when they are set.
struct IntensityMap {
  double scale = 1, offset = 0;
  std::vector<double> from, to;
  double Apply(double x) const;
};

// Applies `map` to every voxel (inside and outside the foreground).
void ApplyMap(const IntensityMap& map, std::vector<float>& values);

// z-score: (x - mean) / SD of the foreground. Error(kInvalidInput) for a constant foreground.
IntensityMap ZScoreMap(const std::vector<float>& values, const std::vector<uint8_t>& mask);

// The `low` percentile of the foreground to 0, the `high` one to 1 (0 <= low < high <= 100).
IntensityMap PercentileMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, double low, double high);

enum class Contrast { kT1, kT2 };

struct WhiteStripe {
  IntensityMap map;
  double mode = 0;                 // the white-matter peak (input units)
  double low = 0, high = 0;        // the stripe's range (input units)
  std::size_t voxels = 0;          // voxels in the stripe
  double mean = 0, sd = 0;         // of the stripe
};

// WhiteStripe normalization; `width` is the stripe's half-width in quantiles (0.05 as published).
// Error(kInvalidInput) when the histogram has no peak or the stripe is constant.
WhiteStripe WhiteStripeMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, Contrast contrast, double width);

// The voxels of the stripe (the normal-appearing white matter WhiteStripeMap found).
std::vector<uint8_t> StripeMask(const std::vector<float>& values, const std::vector<uint8_t>& mask, const WhiteStripe& stripe);

// A Nyul landmark model: landmark percentiles and their standard-scale positions.
struct NyulModel {
  std::vector<double> percentiles;  // ascending, first and last are the range ends (e.g. 1 ... 99)
  std::vector<double> standard;     // ascending, same length; first = scale_min, last = scale_max
  std::size_t trained_on = 0;       // images
};

// The default landmarks: 1, 10, 20, ..., 90, 99.
std::vector<double> DefaultNyulPercentiles();

// Trains a model from each image's foreground values: each image's range landmarks map to
// [scale_min, scale_max], the other landmarks' positions on that scale are averaged.
// Error(kInvalidInput) for no image, a constant one, or landmarks that are not ascending.
NyulModel TrainNyulModel(const std::vector<std::vector<float>>& foregrounds, const std::vector<double>& percentiles,
                         double scale_min = 0, double scale_max = 100);

// The map of one image onto the model. Error(kInvalidInput) when its landmarks do not ascend.
IntensityMap NyulMap(const std::vector<float>& values, const std::vector<uint8_t>& mask, const NyulModel& model);

nlohmann::json NyulModelJson(const NyulModel& model);
// Error(kInvalidInput) naming what is wrong in the stored model.
NyulModel NyulModelFromJson(const nlohmann::json& json);

}  // namespace procnode::mr
