// CUDA kernels of the lung processor behind a plain C++ interface (no CUDA types), so the rest of
// procnode builds without nvcc. Each call copies its inputs to device 0, runs, and copies the
// result back; semantics are those of lung::LungBackend (lung/lung_backend.h), which they match
// exactly. Functions throw procnode::Error(kUnavailable) with the CUDA error string on failure.
// Only linked when built with PROCNODE_CUDA.
#pragma once

#include <cstddef>
#include <cstdint>

namespace procnode::cuda {

void LungThreshold(const float* hu, std::size_t count, float threshold, const uint8_t* within, uint8_t* out);
void LungLabel(const uint8_t* mask, int nx, int ny, int nz, bool connect_slices, int32_t* labels);
void LungErodeInPlane(const uint8_t* in, int nx, int ny, int nz, uint8_t* out);
void LungHistogram(const float* hu, const uint8_t* labels, std::size_t count, int label_count, uint64_t* bins);

}  // namespace procnode::cuda
