#include "processors/mr_normalize/bias_field.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "processors/mr_normalize/normalize.h"

namespace procnode::mr {
namespace {

// A head of two tissues (white matter 100 inside grey matter 60) under a known smooth
// multiplicative field (a tilt and a bowl, about 0.6-2.2 over the head), with additive noise.
struct Phantom {
  Volume image, clean;
  std::vector<float> field;
  std::vector<uint8_t> white_matter;
};

Phantom MakePhantom() {
  Phantom p;
  Volume& v = p.image;
  v.dims = {80, 96, 64};
  v.spacing = {2.0, 2.0, 2.5};
  v.modality = "MR";
  const std::size_t n = v.VoxelCount();
  v.voxels.resize(n);
  p.clean = v;
  p.field.resize(n);
  p.white_matter.assign(n, 0);
  std::mt19937 random(11);
  std::normal_distribution<float> noise(0, 3);
  for (std::size_t z = 0; z < v.dims[2]; ++z) {
    for (std::size_t y = 0; y < v.dims[1]; ++y) {
      for (std::size_t x = 0; x < v.dims[0]; ++x) {
        const std::size_t i = (z * v.dims[1] + y) * v.dims[0] + x;
        const double u = x / 79.0 - 0.5, w = y / 95.0 - 0.5, t = z / 63.0 - 0.5;
        const double dx = u / 0.45, dy = w / 0.45, dz = t / 0.45;
        const double r = std::sqrt(dx * dx + dy * dy + dz * dz);
        float tissue = 0;
        if (r < 0.6) {
          tissue = 100;
          p.white_matter[i] = r < 0.5;  // away from the partial boundary
        } else if (r < 1) {
          tissue = 60;
        }
        p.field[i] = static_cast<float>(std::exp(1.2 * u - 1.0 * w + 0.8 * t + 1.5 * (u * u + w * w)));
        const float e = noise(random);
        p.clean.voxels[i] = std::max(0.5f, tissue + e);
        v.voxels[i] = std::max(0.5f, tissue * p.field[i] + e);
      }
    }
  }
  return p;
}

double Correlation(const std::vector<float>& a, const std::vector<float>& b, const std::vector<uint8_t>& mask) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!mask[i]) continue;
    sa += a[i];
    sb += b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
    sab += a[i] * b[i];
    n += 1;
  }
  const double cov = sab / n - sa / n * sb / n;
  return cov / std::sqrt((saa / n - sa / n * sa / n) * (sbb / n - sb / n * sb / n));
}

TEST(BiasField, EstimatedFieldCorrelatesWithTheTrueOneAndCorrectionRestoresUniformity) {
  const Phantom p = MakePhantom();
  const auto mask = ForegroundMask(p.image);
  BiasFieldParameters parameters;
  parameters.shrink_factor = 2;
  int progress_calls = 0;
  const BiasField estimate = EstimateBiasField(p.image, mask, parameters, {.progress = [&](double, const std::string&) { ++progress_calls; }});
  EXPECT_GT(progress_calls, 2);
  ASSERT_EQ(estimate.field.size(), p.image.VoxelCount());
  const double r = Correlation(estimate.field, p.field, mask);
  EXPECT_GT(r, 0.95) << "correlation with the true field";
  EXPECT_LT(estimate.minimum, 0.9);
  EXPECT_GT(estimate.maximum, 1.1);
  const auto corrected = CorrectBias(p.image.voxels, estimate.field);
  const double clean_cv = CoefficientOfVariation(p.clean.voxels, p.white_matter);
  const double biased_cv = CoefficientOfVariation(p.image.voxels, p.white_matter);
  const double corrected_cv = CoefficientOfVariation(corrected, p.white_matter);
  EXPECT_GT(biased_cv, 2 * clean_cv) << "the phantom's field must matter";
  EXPECT_LT(corrected_cv, 1.25 * clean_cv) << "clean " << clean_cv << ", biased " << biased_cv << ", corrected " << corrected_cv;
}

TEST(BiasField, RefusesATinyMaskAndBadParameters) {
  const Phantom p = MakePhantom();
  std::vector<uint8_t> tiny(p.image.VoxelCount(), 0);
  tiny[100] = 1;
  EXPECT_THROW(EstimateBiasField(p.image, tiny, {}), Error);
  BiasFieldParameters bad;
  bad.levels = 0;
  EXPECT_THROW(EstimateBiasField(p.image, ForegroundMask(p.image), bad), Error);
}

TEST(BiasField, StopsWhenCancelled) {
  const Phantom p = MakePhantom();
  try {
    EstimateBiasField(p.image, ForegroundMask(p.image), {}, {.stop_requested = [] { return true; }});
    FAIL() << "not cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
}

}  // namespace
}  // namespace procnode::mr
