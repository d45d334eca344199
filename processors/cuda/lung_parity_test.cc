// GPU parity of the lung processor: every CUDA kernel against its CPU twin (identical results:
// masks, canonical labels, integer histograms), and the whole processor on the real chest CT
// (same labels, measurements equal to float tolerance). Skipped, with the reason, where procnode
// was built without CUDA or no GPU is present.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "processors/cuda/gpu_test_support.h"
#include "processors/lung/lung_emphysema.h"
#include "processors/lung/lung_ops.h"
#include "processors/lung/lung_test_support.h"

namespace procnode::lung {
namespace {

std::unique_ptr<LungBackend> GpuOrSkipReason(std::string& reason) {
  const GpuStatus gpu = ProbeGpu();
  if (!gpu.compiled) {
    reason = "GPU test skipped: " + gpu.reason;
    return nullptr;
  }
  if (!gpu.found) {
    reason = "GPU test skipped: no GPU on this machine (" + gpu.reason + ")";
    return nullptr;
  }
  return MakeCudaLungBackend();
}

TEST(LungGpuParity, EveryKernelMatchesItsCpuTwin) {
  std::string reason;
  auto gpu = GpuOrSkipReason(reason);
  if (!gpu) PROCNODE_GPU_SKIP_OR_FAIL(reason);
  auto cpu = MakeCpuLungBackend();
  std::vector<Grid> grids{Grid{37, 23, 19}};
  if (!gpu_test::SmallOnly()) grids.push_back(Grid{512, 512, 64});
  for (const Grid g : grids) {
    std::mt19937 random(11);
    std::uniform_real_distribution<float> hu(-1100.0f, 3200.0f);
    std::vector<float> values(g.Count());
    for (auto& v : values) v = hu(random);
    const auto within = testing::RandomMask(g, 0.5, 5);
    std::vector<uint8_t> a(g.Count()), b(g.Count());
    cpu->Threshold(values.data(), g, -950.0f, within.data(), a.data());
    gpu->Threshold(values.data(), g, -950.0f, within.data(), b.data());
    EXPECT_EQ(a, b) << "threshold";
    for (const double density : {0.3, 0.6}) {
      const auto mask = testing::RandomMask(g, density, 9);
      for (const bool connect : {false, true}) {
        std::vector<int32_t> la(g.Count()), lb(g.Count());
        cpu->Label(mask.data(), g, connect, la.data());
        gpu->Label(mask.data(), g, connect, lb.data());
        EXPECT_EQ(la, lb) << "label, density " << density << " 3D " << connect;
      }
      cpu->ErodeInPlane(mask.data(), g, a.data());
      gpu->ErodeInPlane(mask.data(), g, b.data());
      EXPECT_EQ(a, b) << "erosion";
    }
    std::vector<uint8_t> labels(g.Count());
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>(i % 3);
    std::vector<uint64_t> ha(2 * kHistogramBins), hb(2 * kHistogramBins);
    cpu->Histogram(values.data(), labels.data(), g, 2, ha.data());
    gpu->Histogram(values.data(), labels.data(), g, 2, hb.data());
    EXPECT_EQ(ha, hb) << "histogram";
  }
  EXPECT_EQ(gpu->FallbackNote(), "");
  EXPECT_EQ(gpu->Device().rfind("cuda:0", 0), 0u) << gpu->Device();
}

TEST(LungGpuParity, TheChestCtGivesTheSameLabelsAndMeasurementsOnBothDevices) {
  std::string reason;
  auto gpu = GpuOrSkipReason(reason);
  if (!gpu) PROCNODE_GPU_SKIP_OR_FAIL(reason);
  if (gpu_test::SmallOnly()) GTEST_SKIP() << "small grids only (PROCNODE_GPU_KIT_SMALL)";
  auto cpu = MakeCpuLungBackend();
  for (const char* kernel : {"lung-kernel", "standard-kernel"}) {
    const Volume ct = gpu_test::ChestCt(kernel);
    const LungResult on_cpu = SegmentLungsAndQuantify(ct, {}, *cpu);
    const LungResult on_gpu = SegmentLungsAndQuantify(ct, {}, *gpu);
    EXPECT_EQ(on_cpu.labels, on_gpu.labels) << kernel;
    EXPECT_EQ(on_cpu.histograms, on_gpu.histograms) << kernel;
    for (const auto& [c, g] : {std::pair{&on_cpu.right, &on_gpu.right}, std::pair{&on_cpu.left, &on_gpu.left},
                               std::pair{&on_cpu.total, &on_gpu.total}}) {
      EXPECT_NEAR(c->volume_ml, g->volume_ml, 1e-9);
      EXPECT_NEAR(c->mean_hu, g->mean_hu, 1e-6);
      EXPECT_NEAR(c->laa_percent, g->laa_percent, 1e-9);
      EXPECT_EQ(c->percentile_hu, g->percentile_hu);
      EXPECT_EQ(c->clusters, g->clusters);
    }
    EXPECT_EQ(on_gpu.device.rfind("cuda:0", 0), 0u) << on_gpu.device << " " << on_gpu.device_note;
  }
}

}  // namespace
}  // namespace procnode::lung
