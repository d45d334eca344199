#include "processors/volume_stats.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace procnode {
namespace {

TEST(VolumeStats, CpuComputesCountMinMaxAndMean) {
  const std::vector<float> v{-1000, 0, 40, 2000};
  const auto s = ComputeStatsCpu(v.data(), v.size());
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.min, -1000);
  EXPECT_EQ(s.max, 2000);
  EXPECT_DOUBLE_EQ(s.mean, 260);
  EXPECT_EQ(s.device, "cpu");
}

TEST(VolumeStats, AnEmptyVolumeIsInvalidInput) {
  EXPECT_THROW(ComputeStatsCpu(nullptr, 0), Error);
  EXPECT_THROW(ComputeStats(nullptr, 0, DevicePreference::kAuto), Error);
}

TEST(VolumeStats, DevicePreferenceParsesTheThreeNamesOnly) {
  EXPECT_EQ(ParseDevicePreference("auto"), DevicePreference::kAuto);
  EXPECT_EQ(ParseDevicePreference("gpu"), DevicePreference::kGpu);
  EXPECT_THROW(ParseDevicePreference("GPU0"), Error);
}

TEST(VolumeStats, AutoFallsBackToCpuAndSaysWhyWhenThereIsNoGpu) {
  const GpuStatus gpu = ProbeGpu();
  if (gpu.found) GTEST_SKIP() << "a GPU is present (" << gpu.name << "): the fallback is not taken";
  const std::vector<float> v{1, 2, 3};
  const auto s = ComputeStats(v.data(), v.size(), DevicePreference::kGpu);
  EXPECT_EQ(s.device, "cpu");
  EXPECT_NE(s.note.find("no GPU"), std::string::npos) << s.note;
  EXPECT_FALSE(gpu.reason.empty());
}

}  // namespace
}  // namespace procnode
