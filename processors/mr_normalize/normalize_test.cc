#include "processors/mr_normalize/normalize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"

namespace procnode::mr {
namespace {

// A "head": a noisy ellipsoid of two tissues (grey 60 outside a white-matter core at 100) in a
// dark, noisy background, with a hollow (a ventricle) at 20 in its centre.
Volume Phantom(unsigned seed = 7) {
  Volume v;
  v.dims = {48, 56, 40};
  v.modality = "MR";
  v.voxels.resize(v.VoxelCount());
  std::mt19937 random(seed);
  std::normal_distribution<float> noise(0, 3);
  for (std::size_t z = 0; z < v.dims[2]; ++z) {
    for (std::size_t y = 0; y < v.dims[1]; ++y) {
      for (std::size_t x = 0; x < v.dims[0]; ++x) {
        const double dx = (x - 23.5) / 20, dy = (y - 27.5) / 24, dz = (z - 19.5) / 16;
        const double r = std::sqrt(dx * dx + dy * dy + dz * dz);
        float value = 2;
        if (r < 0.15) {
          value = 20;
        } else if (r < 0.6) {
          value = 100;
        } else if (r < 1) {
          value = 60;
        }
        v.voxels[(z * v.dims[1] + y) * v.dims[0] + x] = std::max(0.0f, value + noise(random));
      }
    }
  }
  return v;
}

double MeanInside(const std::vector<float>& values, const std::vector<uint8_t>& mask) {
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) {
      sum += values[i];
      ++n;
    }
  }
  return sum / n;
}

TEST(MrNormalize, ForegroundIsTheHeadWithItsHollowFilled) {
  const Volume v = Phantom();
  const auto mask = ForegroundMask(v);
  // The ellipsoid's volume: 4/3 pi 20 24 16 = 32170 voxels; the ventricle (value 20, below Otsu's
  // cut) is inside it, so it is filled.
  EXPECT_NEAR(static_cast<double>(CountInside(mask)), 32170, 0.03 * 32170);
  EXPECT_TRUE(mask[(20 * v.dims[1] + 28) * v.dims[0] + 24]);  // the centre, in the ventricle
  EXPECT_FALSE(mask[0]);
}

TEST(MrNormalize, ForegroundKeepsOnlyTheLargestPart) {
  Volume v = Phantom();
  // A bright speck far from the head (a ghost or a marker) is left out.
  for (std::size_t x = 0; x < 3; ++x) v.voxels[(2 * v.dims[1] + 2) * v.dims[0] + x] = 100;
  const auto mask = ForegroundMask(v);
  EXPECT_FALSE(mask[(2 * v.dims[1] + 2) * v.dims[0] + 1]);
}

TEST(MrNormalize, ConstantImageIsRefused) {
  Volume v;
  v.dims = {4, 4, 4};
  v.voxels.assign(64, 5.0f);
  EXPECT_THROW(ForegroundMask(v), Error);
}

TEST(MrNormalize, ZScoreGivesForegroundMeanZeroAndSdOne) {
  Volume v = Phantom();
  const auto mask = ForegroundMask(v);
  ApplyMap(ZScoreMap(v.voxels, mask), v.voxels);
  double sum = 0, squares = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.voxels.size(); ++i) {
    if (!mask[i]) continue;
    sum += v.voxels[i];
    squares += v.voxels[i] * v.voxels[i];
    ++n;
  }
  EXPECT_NEAR(sum / n, 0, 1e-5);
  EXPECT_NEAR(std::sqrt(squares / n), 1, 1e-5);
}

TEST(MrNormalize, PercentileMapsItsLandmarksToZeroAndOne) {
  Volume v = Phantom();
  const auto mask = ForegroundMask(v);
  const IntensityMap map = PercentileMap(v.voxels, mask, 2, 98);
  ApplyMap(map, v.voxels);
  auto inside = ValuesInside(v.voxels, mask);
  std::sort(inside.begin(), inside.end());
  EXPECT_NEAR(Percentile(inside, 2), 0, 1e-5);
  EXPECT_NEAR(Percentile(inside, 98), 1, 1e-5);
  EXPECT_THROW(PercentileMap(v.voxels, mask, 60, 50), Error);
}

TEST(MrNormalize, WhiteStripeFindsTheBrightestTissueOnT1AndScalesItToZeroMeanUnitSd) {
  Volume v = Phantom();
  const auto mask = ForegroundMask(v);
  const WhiteStripe stripe = WhiteStripeMap(v.voxels, mask, Contrast::kT1, 0.05);
  EXPECT_NEAR(stripe.mode, 100, 3);
  EXPECT_GT(stripe.low, 90);
  EXPECT_LT(stripe.high, 110);
  const auto wm = StripeMask(v.voxels, mask, stripe);
  ApplyMap(stripe.map, v.voxels);
  EXPECT_NEAR(MeanInside(v.voxels, wm), 0, 1e-4);
  // T2: the tallest peak, which in this phantom is the grey-matter shell (78 % of the head).
  Volume t2 = Phantom();
  EXPECT_NEAR(WhiteStripeMap(t2.voxels, mask, Contrast::kT2, 0.05).mode, 60, 3);
}

TEST(MrNormalize, NyulModelMapsEveryTrainingImageOntoTheStandardScale) {
  // Two images of one anatomy on different scanner scales: after standardisation their landmarks agree.
  Volume a = Phantom(1), b = Phantom(2);
  for (float& x : b.voxels) x = 3.5f * x + 40;
  const auto mask_a = ForegroundMask(a), mask_b = ForegroundMask(b);
  const NyulModel model = TrainNyulModel({ValuesInside(a.voxels, mask_a), ValuesInside(b.voxels, mask_b)}, DefaultNyulPercentiles());
  EXPECT_EQ(model.trained_on, 2u);
  EXPECT_DOUBLE_EQ(model.standard.front(), 0);
  EXPECT_DOUBLE_EQ(model.standard.back(), 100);
  ApplyMap(NyulMap(a.voxels, mask_a, model), a.voxels);
  ApplyMap(NyulMap(b.voxels, mask_b, model), b.voxels);
  auto ia = ValuesInside(a.voxels, mask_a), ib = ValuesInside(b.voxels, mask_b);
  std::sort(ia.begin(), ia.end());
  std::sort(ib.begin(), ib.end());
  for (const double p : model.percentiles) EXPECT_NEAR(Percentile(ia, p), Percentile(ib, p), 0.5) << p;
  EXPECT_NEAR(Percentile(ia, 1), 0, 1e-3);
  EXPECT_NEAR(Percentile(ia, 99), 100, 1e-3);
}

TEST(MrNormalize, NyulModelRoundTripsThroughJsonAndRefusesBrokenOnes) {
  const NyulModel model{.percentiles = {1, 50, 99}, .standard = {0, 40, 100}, .trained_on = 3};
  const NyulModel back = NyulModelFromJson(NyulModelJson(model));
  EXPECT_EQ(back.percentiles, model.percentiles);
  EXPECT_EQ(back.standard, model.standard);
  EXPECT_EQ(back.trained_on, 3u);
  EXPECT_THROW(NyulModelFromJson({{"kind", "something-else"}}), Error);
  auto descending = NyulModelJson(model);
  descending["standard"] = {0, 120, 100};
  EXPECT_THROW(NyulModelFromJson(descending), Error);
  EXPECT_THROW(TrainNyulModel({}, DefaultNyulPercentiles()), Error);
  EXPECT_THROW(TrainNyulModel({{1, 1, 1, 1}}, DefaultNyulPercentiles()), Error);
}

TEST(MrNormalize, PiecewiseMapExtendsItsEndSegments) {
  const IntensityMap map{.from = {10, 20, 40}, .to = {0, 50, 100}};
  EXPECT_DOUBLE_EQ(map.Apply(15), 25);
  EXPECT_DOUBLE_EQ(map.Apply(30), 75);
  EXPECT_DOUBLE_EQ(map.Apply(0), -50);
  EXPECT_DOUBLE_EQ(map.Apply(60), 150);
}

TEST(MrNormalize, CoefficientOfVariationIsSdOverMean) {
  const std::vector<float> values{1, 3, 5, 100};
  const std::vector<uint8_t> mask{1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(CoefficientOfVariation(values, mask), 0.5);
}

}  // namespace
}  // namespace procnode::mr
