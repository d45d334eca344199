// CUDA kernels for volume statistics, behind a plain C++ interface (no CUDA types), so the rest
// of procnode builds without nvcc. Only linked when built with PROCNODE_CUDA.
// Functions throw procnode::Error(kUnavailable) with the CUDA error string on failure.
#pragma once

#include <cstddef>
#include <string>

namespace procnode::cuda {

struct DeviceInfo {
  int count = 0;
  std::string name;
  std::size_t memory_bytes = 0;  // the first device's global memory
  std::string error;  // non-empty when the runtime reported an error (no driver, no device)
};

DeviceInfo QueryDevices();

struct MinMaxSum {
  double min = 0, max = 0, sum = 0;
};

// Reduces `count` floats (count > 0) on device 0.
MinMaxSum ReduceMinMaxSum(const float* host_voxels, std::size_t count);

}  // namespace procnode::cuda
