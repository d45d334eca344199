#include "processors/volume_stats.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#if PROCNODE_HAVE_CUDA
#include "processors/cuda/stats_kernels.h"
#endif

namespace procnode {

DevicePreference ParseDevicePreference(const std::string& text) {
  if (text == "auto") return DevicePreference::kAuto;
  if (text == "cpu") return DevicePreference::kCpu;
  if (text == "gpu") return DevicePreference::kGpu;
  throw Error(ErrorCode::kInvalidInput, "device '" + text + "': expected auto, cpu or gpu");
}

VolumeStats ComputeStatsCpu(const float* voxels, std::size_t count) {
  if (count == 0) throw Error(ErrorCode::kInvalidInput, "volume statistics: the volume is empty");
  VolumeStats stats;
  stats.count = count;
  stats.device = "cpu";
  double lo = voxels[0], hi = voxels[0], sum = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double v = voxels[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  stats.min = lo;
  stats.max = hi;
  stats.mean = sum / static_cast<double>(count);
  return stats;
}

GpuStatus ProbeGpu() {
  GpuStatus status;
#if PROCNODE_HAVE_CUDA
  status.compiled = true;
  const auto info = cuda::QueryDevices();
  status.device_count = info.count;
  status.found = info.count > 0;
  status.name = info.name;
  status.memory_bytes = info.memory_bytes;
  status.reason = info.error;
#else
  status.reason = "built without CUDA (PROCNODE_CUDA=OFF)";
#endif
  return status;
}

VolumeStats ComputeStats(const float* voxels, std::size_t count, DevicePreference preference) {
  if (preference == DevicePreference::kCpu) return ComputeStatsCpu(voxels, count);
  if (count == 0) throw Error(ErrorCode::kInvalidInput, "volume statistics: the volume is empty");
  const GpuStatus gpu = ProbeGpu();
  std::string note;
  if (gpu.found) {
#if PROCNODE_HAVE_CUDA
    try {
      const auto reduced = cuda::ReduceMinMaxSum(voxels, count);
      VolumeStats stats;
      stats.count = count;
      stats.min = reduced.min;
      stats.max = reduced.max;
      stats.mean = reduced.sum / static_cast<double>(count);
      stats.device = "cuda:0 " + gpu.name;
      return stats;
    } catch (const Error& e) {
      note = std::string("GPU call failed, CPU used: ") + e.what();
      Log(LogLevel::kWarning, "volume statistics: " + note);
    }
#endif
  } else {
    note = "no GPU, CPU used: " + gpu.reason;
  }
  VolumeStats stats = ComputeStatsCpu(voxels, count);
  stats.note = note;
  return stats;
}

}  // namespace procnode
