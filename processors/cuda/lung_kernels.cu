#include "processors/cuda/lung_kernels.h"

#include <cuda_runtime.h>

#include "core/error.h"
#include "processors/cuda/device_buffer.cuh"
#include "processors/lung/lung_ops.h"

namespace procnode::cuda {
namespace {

constexpr int kThreads = 256;

int Blocks(std::size_t count) {
  const std::size_t wanted = (count + kThreads - 1) / kThreads;
  return static_cast<int>(wanted < 65535 ? (wanted > 0 ? wanted : 1) : 65535);
}

#define PROCNODE_GRID_STRIDE(i, count)                                                              \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (count); \
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)

__global__ void ThresholdKernel(const float* hu, std::size_t count, float threshold, const uint8_t* within,
                                uint8_t* out) {
  PROCNODE_GRID_STRIDE(i, count) { out[i] = lung::Below(hu[i], threshold) & (within ? within[i] : 1); }
}

// Playne & Hawick's union-find: atomicMin links the larger root below the smaller one; a lost
// race retries with the value it found. Pointers only ever move to smaller indices, so each
// component ends with its smallest index as root, as on the CPU.
__device__ void AtomicUnite(int32_t* parent, int32_t a, int32_t b) {
  bool done = false;
  do {
    a = lung::FindRoot(parent, a);
    b = lung::FindRoot(parent, b);
    if (a < b) {
      const int32_t old = atomicMin(&parent[b], a);
      done = old == b;
      b = old;
    } else if (b < a) {
      const int32_t old = atomicMin(&parent[a], b);
      done = old == a;
      a = old;
    } else {
      done = true;
    }
  } while (!done);
}

__global__ void LabelInit(const uint8_t* mask, std::size_t count, int32_t* parent) {
  PROCNODE_GRID_STRIDE(i, count) { parent[i] = mask[i] ? static_cast<int32_t>(i) : -1; }
}

__global__ void LabelMerge(const uint8_t* mask, int nx, int ny, std::size_t count, bool connect_slices, int32_t* parent) {
  const std::size_t plane = static_cast<std::size_t>(nx) * ny;
  PROCNODE_GRID_STRIDE(i, count) {
    if (!mask[i]) continue;
    const int x = static_cast<int>(i % nx);
    const int y = static_cast<int>((i / nx) % ny);
    const std::size_t z = i / plane;
    const auto self = static_cast<int32_t>(i);
    if (x > 0 && mask[i - 1]) AtomicUnite(parent, self, self - 1);
    if (y > 0 && mask[i - nx]) AtomicUnite(parent, self, static_cast<int32_t>(i - nx));
    if (connect_slices && z > 0 && mask[i - plane]) AtomicUnite(parent, self, static_cast<int32_t>(i - plane));
  }
}

__global__ void LabelFlatten(const int32_t* parent, std::size_t count, int32_t* labels) {
  PROCNODE_GRID_STRIDE(i, count) {
    labels[i] = parent[i] < 0 ? 0 : lung::FindRoot(parent, static_cast<int32_t>(i)) + 1;
  }
}

__global__ void ErodeKernel(const uint8_t* in, int nx, int ny, std::size_t count, uint8_t* out) {
  PROCNODE_GRID_STRIDE(i, count) {
    const int x = static_cast<int>(i % nx);
    const int y = static_cast<int>((i / nx) % ny);
    out[i] = lung::ErodedInPlane(in, x, y, nx, ny, i);
  }
}

__global__ void HistogramKernel(const float* hu, const uint8_t* labels, std::size_t count, int label_count,
                                unsigned long long* bins) {
  PROCNODE_GRID_STRIDE(i, count) {
    const int label = labels[i];
    if (label < 1 || label > label_count) continue;
    atomicAdd(&bins[static_cast<std::size_t>(label - 1) * lung::kHistogramBins + lung::HistogramBin(hu[i])], 1ull);
  }
}

template <typename T>
void Upload(DeviceBuffer<T>& device, const T* host) {
  PROCNODE_CUDA_CHECK(cudaMemcpy(device.get(), host, device.count() * sizeof(T), cudaMemcpyHostToDevice));
}

template <typename T>
void Download(T* host, const DeviceBuffer<T>& device) {
  PROCNODE_CUDA_CHECK(cudaMemcpy(host, device.get(), device.count() * sizeof(T), cudaMemcpyDeviceToHost));
}

}  // namespace

void LungThreshold(const float* hu, std::size_t count, float threshold, const uint8_t* within, uint8_t* out) {
  PROCNODE_CUDA_CHECK(cudaSetDevice(0));
  DeviceBuffer<float> d_hu(count);
  DeviceBuffer<uint8_t> d_out(count);
  Upload(d_hu, hu);
  if (within) {
    DeviceBuffer<uint8_t> d_within(count);
    Upload(d_within, within);
    ThresholdKernel<<<Blocks(count), kThreads>>>(d_hu.get(), count, threshold, d_within.get(), d_out.get());
    PROCNODE_CUDA_CHECK(cudaGetLastError());
    Download(out, d_out);
    return;
  }
  ThresholdKernel<<<Blocks(count), kThreads>>>(d_hu.get(), count, threshold, nullptr, d_out.get());
  PROCNODE_CUDA_CHECK(cudaGetLastError());
  Download(out, d_out);
}

void LungLabel(const uint8_t* mask, int nx, int ny, int nz, bool connect_slices, int32_t* labels) {
  const std::size_t count = static_cast<std::size_t>(nx) * ny * nz;
  if (count >= 0x7fffffffu) throw Error(ErrorCode::kUnsupported, "volume too large for labelling");
  PROCNODE_CUDA_CHECK(cudaSetDevice(0));
  DeviceBuffer<uint8_t> d_mask(count);
  DeviceBuffer<int32_t> d_parent(count), d_labels(count);
  Upload(d_mask, mask);
  LabelInit<<<Blocks(count), kThreads>>>(d_mask.get(), count, d_parent.get());
  LabelMerge<<<Blocks(count), kThreads>>>(d_mask.get(), nx, ny, count, connect_slices, d_parent.get());
  LabelFlatten<<<Blocks(count), kThreads>>>(d_parent.get(), count, d_labels.get());
  PROCNODE_CUDA_CHECK(cudaGetLastError());
  Download(labels, d_labels);
}

void LungErodeInPlane(const uint8_t* in, int nx, int ny, int nz, uint8_t* out) {
  const std::size_t count = static_cast<std::size_t>(nx) * ny * nz;
  PROCNODE_CUDA_CHECK(cudaSetDevice(0));
  DeviceBuffer<uint8_t> d_in(count), d_out(count);
  Upload(d_in, in);
  ErodeKernel<<<Blocks(count), kThreads>>>(d_in.get(), nx, ny, count, d_out.get());
  PROCNODE_CUDA_CHECK(cudaGetLastError());
  Download(out, d_out);
}

void LungHistogram(const float* hu, const uint8_t* labels, std::size_t count, int label_count, uint64_t* bins) {
  static_assert(sizeof(uint64_t) == sizeof(unsigned long long));
  PROCNODE_CUDA_CHECK(cudaSetDevice(0));
  const std::size_t size = static_cast<std::size_t>(label_count) * lung::kHistogramBins;
  DeviceBuffer<float> d_hu(count);
  DeviceBuffer<uint8_t> d_labels(count);
  DeviceBuffer<unsigned long long> d_bins(size);
  Upload(d_hu, hu);
  Upload(d_labels, labels);
  PROCNODE_CUDA_CHECK(cudaMemset(d_bins.get(), 0, size * sizeof(unsigned long long)));
  HistogramKernel<<<Blocks(count), kThreads>>>(d_hu.get(), d_labels.get(), count, label_count, d_bins.get());
  PROCNODE_CUDA_CHECK(cudaGetLastError());
  PROCNODE_CUDA_CHECK(cudaMemcpy(bins, d_bins.get(), size * sizeof(uint64_t), cudaMemcpyDeviceToHost));
}

}  // namespace procnode::cuda
