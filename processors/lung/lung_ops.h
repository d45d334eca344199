// Per-voxel operations of the lung processor, shared by the CPU twin (lung_backend.cc) and the
// CUDA kernels (cuda/lung_kernels.cu), so both compute exactly the same thing. Pure functions on
// raw arrays; no allocation. Volumes are x fastest, then y, then z (core/volume.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define PROCNODE_HD __host__ __device__
#else
#define PROCNODE_HD
#endif

namespace procnode::lung {

// Histograms: 1 HU bins from -1024 HU (bin 0) to 3071 HU (bin 4095); values outside clamp.
inline constexpr int kHistogramMinHu = -1024;
inline constexpr int kHistogramBins = 4096;

// Bin b holds HU values in [b - 1024, b - 1023): a voxel is below a threshold t (integer HU)
// exactly when its bin is below t + 1024.
PROCNODE_HD inline int HistogramBin(float hu) {
  const float shifted = floorf(hu) - static_cast<float>(kHistogramMinHu);
  if (!(shifted > 0.0f)) return 0;  // also NaN
  if (shifted >= static_cast<float>(kHistogramBins - 1)) return kHistogramBins - 1;
  return static_cast<int>(shifted);
}

PROCNODE_HD inline uint8_t Below(float hu, float threshold) { return hu < threshold ? 1 : 0; }

// In-plane erosion with the 4-neighbourhood; outside the image counts as background.
PROCNODE_HD inline uint8_t ErodedInPlane(const uint8_t* mask, int x, int y, int nx, int ny, std::size_t i) {
  if (!mask[i]) return 0;
  if (x == 0 || y == 0 || x == nx - 1 || y == ny - 1) return 0;
  return (mask[i - 1] && mask[i + 1] && mask[i - nx] && mask[i + nx]) ? 1 : 0;
}

// Union-find over voxel indices, roots linked towards the smaller index, so that after all
// unions every component's root is its smallest voxel index, whatever the order of the unions.
// Connected-component labels are root + 1 (0 = background): the same on CPU and GPU.
PROCNODE_HD inline int32_t FindRoot(const int32_t* parent, int32_t i) {
  while (parent[i] != i) i = parent[i];
  return i;
}

}  // namespace procnode::lung
