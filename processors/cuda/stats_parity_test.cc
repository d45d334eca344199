// GPU parity: the CUDA kernel against its CPU twin. Skipped, with the reason, where procnode was
// built without CUDA or no GPU is present (development and CI machines).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "processors/cuda/gpu_test_support.h"
#include "processors/volume_stats.h"
#if PROCNODE_HAVE_CUDA
#include "processors/cuda/stats_kernels.h"
#endif

namespace procnode {
namespace {

// Parity of the CUDA kernel with its CPU twin, on random data and on the real chest CT.
TEST(VolumeStatsGpu, CudaKernelMatchesTheCpuTwin) {
  const GpuStatus gpu = ProbeGpu();
  if (!gpu.compiled) PROCNODE_GPU_SKIP_OR_FAIL("GPU test skipped: " + gpu.reason);
  if (!gpu.found) PROCNODE_GPU_SKIP_OR_FAIL("GPU test skipped: no GPU on this machine (" + gpu.reason + ")");
#if PROCNODE_HAVE_CUDA
  std::mt19937 random(42);
  std::uniform_real_distribution<float> hu(-1024.0f, 3071.0f);
  std::vector<float> noise(gpu_test::SmallOnly() ? 100'001 : 3'000'001);  // small: for the sanitizers
  for (auto& x : noise) x = hu(random);
  const auto ct = gpu_test::SmallOnly() ? std::vector<float>(1000, -1000.0f) : gpu_test::ChestCt("lung-kernel").voxels;
  const std::vector<const std::vector<float>*> inputs{&noise, &ct};
  for (const auto* data : inputs) {
    const auto cpu = ComputeStatsCpu(data->data(), data->size());
    const auto gpu_sums = cuda::ReduceMinMaxSum(data->data(), data->size());
    EXPECT_EQ(gpu_sums.min, cpu.min);
    EXPECT_EQ(gpu_sums.max, cpu.max);
    EXPECT_NEAR(gpu_sums.sum / data->size(), cpu.mean, 1e-9 * (1 + std::abs(cpu.mean)));
    const auto chosen = ComputeStats(data->data(), data->size(), DevicePreference::kGpu);
    EXPECT_EQ(chosen.device.rfind("cuda:0", 0), 0u) << chosen.device << " " << chosen.note;
  }
#endif
}

}  // namespace
}  // namespace procnode
