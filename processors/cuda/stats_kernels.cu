#include "processors/cuda/stats_kernels.h"

#include <cuda_runtime.h>

#include <cfloat>
#include <string>
#include <vector>

#include "core/error.h"
#include "processors/cuda/device_buffer.cuh"

namespace procnode::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride partial reduction: each block writes its min, max and sum.
__global__ void PartialMinMaxSum(const float* voxels, std::size_t count, double* block_min,
                                 double* block_max, double* block_sum) {
  __shared__ double s_min[kThreads], s_max[kThreads], s_sum[kThreads];
  double lo = DBL_MAX, hi = -DBL_MAX, sum = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x) {
    const double v = voxels[i];
    lo = fmin(lo, v);
    hi = fmax(hi, v);
    sum += v;
  }
  s_min[threadIdx.x] = lo;
  s_max[threadIdx.x] = hi;
  s_sum[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      s_min[threadIdx.x] = fmin(s_min[threadIdx.x], s_min[threadIdx.x + stride]);
      s_max[threadIdx.x] = fmax(s_max[threadIdx.x], s_max[threadIdx.x + stride]);
      s_sum[threadIdx.x] += s_sum[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    block_min[blockIdx.x] = s_min[0];
    block_max[blockIdx.x] = s_max[0];
    block_sum[blockIdx.x] = s_sum[0];
  }
}

}  // namespace

DeviceInfo QueryDevices() {
  DeviceInfo info;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: the CPU path runs instead
    info.error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
    return info;
  }
  info.count = count;
  if (count == 0) {
    info.error = "no CUDA device";
    return info;
  }
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
    info.name = properties.name;
    info.memory_bytes = properties.totalGlobalMem;
  }
  return info;
}

MinMaxSum ReduceMinMaxSum(const float* host_voxels, std::size_t count) {
  PROCNODE_CUDA_CHECK(cudaSetDevice(0));
  DeviceBuffer<float> voxels(count);
  PROCNODE_CUDA_CHECK(cudaMemcpy(voxels.get(), host_voxels, count * sizeof(float), cudaMemcpyHostToDevice));
  const std::size_t wanted = (count + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(wanted < 1024 ? wanted : 1024);
  DeviceBuffer<double> block_min(blocks), block_max(blocks), block_sum(blocks);
  PartialMinMaxSum<<<blocks, kThreads>>>(voxels.get(), count, block_min.get(), block_max.get(),
                                         block_sum.get());
  PROCNODE_CUDA_CHECK(cudaGetLastError());
  std::vector<double> mins(blocks), maxs(blocks), sums(blocks);
  PROCNODE_CUDA_CHECK(cudaMemcpy(mins.data(), block_min.get(), blocks * sizeof(double), cudaMemcpyDeviceToHost));
  PROCNODE_CUDA_CHECK(cudaMemcpy(maxs.data(), block_max.get(), blocks * sizeof(double), cudaMemcpyDeviceToHost));
  PROCNODE_CUDA_CHECK(cudaMemcpy(sums.data(), block_sum.get(), blocks * sizeof(double), cudaMemcpyDeviceToHost));
  MinMaxSum out{mins[0], maxs[0], 0};
  for (int b = 0; b < blocks; ++b) {
    out.min = mins[b] < out.min ? mins[b] : out.min;
    out.max = maxs[b] > out.max ? maxs[b] : out.max;
    out.sum += sums[b];
  }
  return out;
}

}  // namespace procnode::cuda
