// What every procnode .cu file needs: a CUDA status check that throws procnode::Error, and an
// owning device buffer. CUDA-only (included from .cu files).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "core/error.h"

namespace procnode::cuda {

#define PROCNODE_CUDA_CHECK(call)                                                          \
  do {                                                                                     \
    const cudaError_t status_ = (call);                                                    \
    if (status_ != cudaSuccess) {                                                          \
      cudaGetLastError();                                                                  \
      throw Error(ErrorCode::kUnavailable,                                                 \
                  std::string(#call) + ": " + cudaGetErrorString(status_));                \
    }                                                                                      \
  } while (0)

// Owning device buffer; frees in its destructor.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    PROCNODE_CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }
  std::size_t count() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_;
};

}  // namespace procnode::cuda
