// The heavy array steps of the lung processor behind one interface, with a CPU twin (always
// built) and a CUDA implementation (built with PROCNODE_CUDA, used when a GPU is present).
// Both give identical results: thresholds and erosion are exact, connected-component labels are
// canonical (root = smallest voxel index of the component, label = root + 1), histogram counts
// are integers. The per-voxel code they share is in lung_ops.h.
//
// MakeLungBackend(kAuto|kGpu) returns the CUDA backend when procnode was built with CUDA and a GPU
// is present; otherwise the CPU twin, with the reason in `fallback_reason`. When a CUDA call
// fails, the returned backend finishes that call and every later one on the CPU and records why
// (FallbackNote()). Instances are used by one thread at a time; the CPU twin parallelises inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "processors/volume_stats.h"

namespace procnode::lung {

struct Grid {
  int nx = 0, ny = 0, nz = 0;
  std::size_t Count() const { return static_cast<std::size_t>(nx) * ny * nz; }
};

class LungBackend {
 public:
  virtual ~LungBackend() = default;
  // "cpu" or "cuda:0 <name>"; after a failed CUDA call, "cpu".
  virtual std::string Device() const = 0;
  // Why the CPU ran although a GPU was asked for; empty otherwise.
  virtual std::string FallbackNote() const = 0;

  // out[i] = hu[i] < threshold && (within == nullptr || within[i]).
  virtual void Threshold(const float* hu, Grid grid, float threshold, const uint8_t* within, uint8_t* out) = 0;
  // Face-connected components of mask != 0: in-plane only (4-neighbourhood) or in 3D
  // (6-neighbourhood). labels[i] = 0 for background, smallest index of the component + 1 otherwise.
  virtual void Label(const uint8_t* mask, Grid grid, bool connect_slices, int32_t* labels) = 0;
  // One in-plane erosion step (lung_ops.h ErodedInPlane).
  virtual void ErodeInPlane(const uint8_t* in, Grid grid, uint8_t* out) = 0;
  // bins[(label - 1) * kHistogramBins + HistogramBin(hu)] counts voxels with labels[i] in
  // [1, label_count]; bins has label_count * kHistogramBins entries, overwritten.
  virtual void Histogram(const float* hu, const uint8_t* labels, Grid grid, int label_count, uint64_t* bins) = 0;
};

std::unique_ptr<LungBackend> MakeCpuLungBackend();
// Error(kUnavailable) when built without CUDA or no GPU is present.
std::unique_ptr<LungBackend> MakeCudaLungBackend();
std::unique_ptr<LungBackend> MakeLungBackend(DevicePreference preference, std::string* fallback_reason);

}  // namespace procnode::lung
