// The walking skeleton's processor: voxel count, minimum, maximum and mean of a volume in modality
// units, on CPU or CUDA.
//
// ComputeStats() picks the implementation: kCpu always runs ComputeStatsCpu(); kAuto and kGpu run
// the CUDA kernel when procnode was built with CUDA and a GPU is present, and fall back to the CPU
// twin (saying why in `note`) when there is none or the GPU call fails. `device` records which ran.
// ProbeGpu() says whether CUDA is compiled in and what GPU, if any, the runtime sees.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace procnode {

enum class DevicePreference { kAuto, kCpu, kGpu };

// "auto", "cpu" or "gpu"; anything else is Error(kInvalidInput).
DevicePreference ParseDevicePreference(const std::string& text);

struct VolumeStats {
  uint64_t count = 0;
  double min = 0, max = 0, mean = 0;
  std::string device;  // "cpu" or "cuda:<index> <name>"
  std::string note;    // why the CPU ran when a GPU was preferred; empty otherwise
};

struct GpuStatus {
  bool compiled = false;  // built with PROCNODE_CUDA
  bool found = false;
  int device_count = 0;
  std::string name;       // first device
  uint64_t memory_bytes = 0;  // first device's global memory
  std::string reason;     // why none was found
};

// Throws Error(kInvalidInput) for an empty volume.
VolumeStats ComputeStatsCpu(const float* voxels, std::size_t count);
VolumeStats ComputeStats(const float* voxels, std::size_t count, DevicePreference preference);

GpuStatus ProbeGpu();

}  // namespace procnode
