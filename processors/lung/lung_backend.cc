#include "processors/lung/lung_backend.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/parallel.h"
#include "processors/lung/lung_ops.h"
#if PROCNODE_HAVE_CUDA
#include "processors/cuda/lung_kernels.h"
#endif

namespace procnode::lung {
namespace {

// Path halving keeps every parent pointer on a smaller index (lung_ops.h FindRoot).
inline int32_t FindHalving(int32_t* parent, int32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

inline void Unite(int32_t* parent, int32_t a, int32_t b) {
  a = FindHalving(parent, a);
  b = FindHalving(parent, b);
  if (a < b) {
    parent[b] = a;
  } else if (b < a) {
    parent[a] = b;
  }
}

// Slices [first, last) of the grid: initialise and unite within them (never across `first`).
void UniteSlices(const uint8_t* mask, Grid g, bool connect_slices, int first, int last, int32_t* parent) {
  const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
  for (int z = first; z < last; ++z) {
    for (int y = 0; y < g.ny; ++y) {
      std::size_t i = z * plane + static_cast<std::size_t>(y) * g.nx;
      for (int x = 0; x < g.nx; ++x, ++i) {
        const auto self = static_cast<int32_t>(i);
        if (!mask[i]) {
          parent[i] = -1;
          continue;
        }
        parent[i] = (x > 0 && mask[i - 1]) ? parent[i - 1] : self;
        if (y > 0 && mask[i - g.nx]) Unite(parent, self, static_cast<int32_t>(i - g.nx));
        if (connect_slices && z > first && mask[i - plane]) Unite(parent, self, static_cast<int32_t>(i - plane));
      }
    }
  }
}

class CpuLungBackend : public LungBackend {
 public:
  std::string Device() const override { return "cpu"; }
  std::string FallbackNote() const override { return ""; }

  void Threshold(const float* hu, Grid g, float threshold, const uint8_t* within, uint8_t* out) override {
    const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
    ParallelFor(g.nz, [&](std::size_t z) {
      for (std::size_t i = z * plane; i < (z + 1) * plane; ++i) {
        out[i] = Below(hu[i], threshold) & (within ? within[i] : 1);
      }
    });
  }

  void Label(const uint8_t* mask, Grid g, bool connect_slices, int32_t* labels) override {
    const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
    if (g.Count() >= static_cast<std::size_t>(INT32_MAX)) {
      throw Error(ErrorCode::kUnsupported, "volume too large for labelling (" + std::to_string(g.Count()) + " voxels)");
    }
    // Slabs in parallel, then the slab boundaries, then one ascending pass that writes root + 1.
    const int slabs = connect_slices ? std::max(1, std::min<int>(g.nz, static_cast<int>(DefaultParallelism()) * 2)) : g.nz;
    std::vector<int> starts;
    for (int s = 0; s <= slabs; ++s) starts.push_back(static_cast<int>(static_cast<int64_t>(g.nz) * s / slabs));
    ParallelFor(slabs, [&](std::size_t s) { UniteSlices(mask, g, connect_slices, starts[s], starts[s + 1], labels); });
    if (connect_slices) {
      for (int s = 1; s < slabs; ++s) {
        const std::size_t begin = starts[s] * plane;
        for (std::size_t i = begin; i < begin + plane; ++i) {
          if (mask[i] && mask[i - plane]) Unite(labels, static_cast<int32_t>(i), static_cast<int32_t>(i - plane));
        }
      }
    }
    // Every parent is a smaller index, so ascending order sees each parent already final.
    const std::size_t count = g.Count();
    for (std::size_t i = 0; i < count; ++i) {
      const int32_t p = labels[i];
      if (p < 0) {
        labels[i] = 0;
      } else if (static_cast<std::size_t>(p) == i) {
        labels[i] = p + 1;
      } else {
        labels[i] = labels[p];
      }
    }
  }

  void ErodeInPlane(const uint8_t* in, Grid g, uint8_t* out) override {
    const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
    ParallelFor(g.nz, [&](std::size_t z) {
      for (int y = 0; y < g.ny; ++y) {
        std::size_t i = z * plane + static_cast<std::size_t>(y) * g.nx;
        for (int x = 0; x < g.nx; ++x, ++i) out[i] = ErodedInPlane(in, x, y, g.nx, g.ny, i);
      }
    });
  }

  void Histogram(const float* hu, const uint8_t* labels, Grid g, int label_count, uint64_t* bins) override {
    const std::size_t count = g.Count();
    const std::size_t size = static_cast<std::size_t>(label_count) * kHistogramBins;
    const std::size_t chunks = std::max<std::size_t>(1, std::min<std::size_t>(count / 65536, DefaultParallelism() * 4));
    std::vector<std::vector<uint64_t>> partial(chunks);
    ParallelFor(chunks, [&](std::size_t c) {
      std::vector<uint64_t> local;
      for (std::size_t i = count * c / chunks; i < count * (c + 1) / chunks; ++i) {
        const int label = labels[i];
        if (label < 1 || label > label_count) continue;
        if (local.empty()) local.assign(size, 0);
        ++local[static_cast<std::size_t>(label - 1) * kHistogramBins + HistogramBin(hu[i])];
      }
      partial[c] = std::move(local);
    });
    std::fill(bins, bins + size, 0);
    for (const auto& local : partial) {
      for (std::size_t b = 0; b < local.size(); ++b) bins[b] += local[b];
    }
  }
};

#if PROCNODE_HAVE_CUDA
// The CUDA kernels; a failing call switches this backend to the CPU twin for good.
class CudaLungBackend : public LungBackend {
 public:
  explicit CudaLungBackend(std::string name) : name_(std::move(name)) {}
  std::string Device() const override { return failed_ ? "cpu" : "cuda:0 " + name_; }
  std::string FallbackNote() const override { return note_; }

  void Threshold(const float* hu, Grid g, float threshold, const uint8_t* within, uint8_t* out) override {
    Run("threshold", [&] { cuda::LungThreshold(hu, g.Count(), threshold, within, out); },
        [&] { cpu_.Threshold(hu, g, threshold, within, out); });
  }
  void Label(const uint8_t* mask, Grid g, bool connect_slices, int32_t* labels) override {
    Run("label", [&] { cuda::LungLabel(mask, g.nx, g.ny, g.nz, connect_slices, labels); },
        [&] { cpu_.Label(mask, g, connect_slices, labels); });
  }
  void ErodeInPlane(const uint8_t* in, Grid g, uint8_t* out) override {
    Run("erode", [&] { cuda::LungErodeInPlane(in, g.nx, g.ny, g.nz, out); }, [&] { cpu_.ErodeInPlane(in, g, out); });
  }
  void Histogram(const float* hu, const uint8_t* labels, Grid g, int label_count, uint64_t* bins) override {
    Run("histogram", [&] { cuda::LungHistogram(hu, labels, g.Count(), label_count, bins); },
        [&] { cpu_.Histogram(hu, labels, g, label_count, bins); });
  }

 private:
  template <typename Gpu, typename Cpu>
  void Run(const char* step, Gpu gpu, Cpu cpu) {
    if (!failed_) {
      try {
        gpu();
        return;
      } catch (const Error& e) {
        failed_ = true;
        note_ = std::string("GPU call failed in ") + step + ", CPU used from there on: " + e.what();
        Log(LogLevel::kWarning, "lung processor: " + note_);
      }
    }
    cpu();
  }

  std::string name_;
  CpuLungBackend cpu_;
  bool failed_ = false;
  std::string note_;
};
#endif

}  // namespace

std::unique_ptr<LungBackend> MakeCpuLungBackend() { return std::make_unique<CpuLungBackend>(); }

std::unique_ptr<LungBackend> MakeCudaLungBackend() {
  const GpuStatus gpu = ProbeGpu();
  if (!gpu.compiled) throw Error(ErrorCode::kUnavailable, gpu.reason);
  if (!gpu.found) throw Error(ErrorCode::kUnavailable, "no GPU: " + gpu.reason);
#if PROCNODE_HAVE_CUDA
  return std::make_unique<CudaLungBackend>(gpu.name);
#else
  throw Error(ErrorCode::kUnavailable, "built without CUDA");
#endif
}

std::unique_ptr<LungBackend> MakeLungBackend(DevicePreference preference, std::string* fallback_reason) {
  if (preference != DevicePreference::kCpu) {
    try {
      return MakeCudaLungBackend();
    } catch (const Error& e) {
      if (fallback_reason) *fallback_reason = std::string("CPU used: ") + e.what();
    }
  }
  return MakeCpuLungBackend();
}

}  // namespace procnode::lung
