// The GPU check kit's benchmark (scripts/gpu-kit.sh): on the chest CT (both kernels, from the
// NIfTI files the kit carries) the volume statistics and the whole lung-emphysema processor, each
// on the CPU twin and on the GPU of this machine, with the time spent in each backend operation
// (threshold, labelling, erosion, histogram), the parity of the results, and the peak device
// memory. Prints a table and writes the figures as JSON.
//
//   gpu_kit_bench DATA_DIR [--json FILE] [--repeat N]
//
// Exit codes: 0 measured on the GPU and results identical; 1 a difference between the devices or
// an error; 2 usage; 3 no GPU here (the CPU figures are still printed: the kit's CPU-side check).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "nifti/nifti1.h"
#include "processors/lung/lung_backend.h"
#include "processors/lung/lung_emphysema.h"
#include "processors/volume_stats.h"
#if PROCNODE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "processors/cuda/stats_kernels.h"
#endif

namespace procnode {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) { return std::chrono::duration<double, std::milli>(Clock::now() - since).count(); }

// A backend that times each operation of the one it wraps (the CUDA ones copy their results back,
// so each call is complete when it returns).
class TimedBackend : public lung::LungBackend {
 public:
  explicit TimedBackend(std::unique_ptr<lung::LungBackend> inner) : inner_(std::move(inner)) {}
  std::string Device() const override { return inner_->Device(); }
  std::string FallbackNote() const override { return inner_->FallbackNote(); }
  void Threshold(const float* hu, lung::Grid g, float t, const uint8_t* within, uint8_t* out) override {
    Time("threshold", [&] { inner_->Threshold(hu, g, t, within, out); });
  }
  void Label(const uint8_t* mask, lung::Grid g, bool connect, int32_t* labels) override {
    Time(connect ? "label-3d" : "label-2d", [&] { inner_->Label(mask, g, connect, labels); });
  }
  void ErodeInPlane(const uint8_t* in, lung::Grid g, uint8_t* out) override {
    Time("erode", [&] { inner_->ErodeInPlane(in, g, out); });
  }
  void Histogram(const float* hu, const uint8_t* labels, lung::Grid g, int count, uint64_t* bins) override {
    Time("histogram", [&] { inner_->Histogram(hu, labels, g, count, bins); });
  }
  std::map<std::string, double> ms;
  std::map<std::string, int> calls;

 private:
  template <typename F>
  void Time(const std::string& what, F&& call) {
    const auto start = Clock::now();
    call();
    ms[what] += Ms(start);
    ++calls[what];
  }
  std::unique_ptr<lung::LungBackend> inner_;
};

// The device memory in use, sampled every millisecond while it runs; its peak above the start.
class DeviceMemoryPeak {
 public:
  DeviceMemoryPeak() {
#if PROCNODE_HAVE_CUDA
    base_ = InUse();
    sampler_ = std::thread([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), InUse());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
#endif
  }
  // Bytes above the use at construction.
  std::size_t Stop() {
    stop_ = true;
    if (sampler_.joinable()) sampler_.join();
    return peak_ > base_ ? peak_ - base_ : 0;
  }
  ~DeviceMemoryPeak() { Stop(); }

 private:
#if PROCNODE_HAVE_CUDA
  static std::size_t InUse() {
    std::size_t free = 0, total = 0;
    return cudaMemGetInfo(&free, &total) == cudaSuccess ? total - free : 0;
  }
#endif
  std::size_t base_ = 0;
  std::atomic<std::size_t> peak_{0};
  std::atomic<bool> stop_{false};
  std::thread sampler_;
};

struct Run {
  double ms = 0;                        // median of the repeats
  std::map<std::string, double> ops;    // per operation, of the median run
  lung::LungResult result;
};

template <typename MakeBackend>
Run TimeLung(const Volume& ct, int repeat, MakeBackend make) {
  std::vector<Run> runs;
  for (int i = 0; i < repeat; ++i) {
    TimedBackend backend(make());
    const auto start = Clock::now();
    Run run;
    run.result = lung::SegmentLungsAndQuantify(ct, {}, backend);
    run.ms = Ms(start);
    run.ops = backend.ms;
    runs.push_back(std::move(run));
  }
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.ms < b.ms; });
  return std::move(runs[runs.size() / 2]);
}

int Main(int argc, char** argv) {
  std::string data, json_path;
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (arg == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--help" || arg == "-h" || !data.empty() || arg.rfind("--", 0) == 0) {
      std::cerr << "usage: gpu_kit_bench DATA_DIR [--json FILE] [--repeat N]\n"
                   "  the chest CT (DATA_DIR/chest-lung-kernel.nii.gz, chest-standard-kernel.nii.gz): volume\n"
                   "  statistics and lung-emphysema on the CPU twin and on the GPU, per operation, parity,\n"
                   "  peak device memory. Exit 0 GPU measured and identical, 1 difference or error, 2 usage,\n"
                   "  3 no GPU here (CPU figures printed)\n";
      return arg == "--help" || arg == "-h" ? 0 : 2;
    } else {
      data = arg;
    }
  }
  if (data.empty()) {
    std::cerr << "gpu_kit_bench: DATA_DIR is required (--help)\n";
    return 2;
  }
  const GpuStatus gpu = ProbeGpu();
  std::cout << "GPU: " << (gpu.found ? gpu.name : "none (" + gpu.reason + ")") << "\n";
  nlohmann::json report{{"gpu", gpu.found ? gpu.name : ""}, {"gpu_reason", gpu.reason}, {"kernels", nlohmann::json::object()}};
  bool identical = true;
  for (const std::string kernel : {"lung-kernel", "standard-kernel"}) {
    auto start = Clock::now();
    Volume ct = VolumeFromNifti(ReadNiftiFile(data + "/chest-" + kernel + ".nii.gz"));
    ct.modality = "CT";  // the kit's volumes are the shared chest CT, in HU
    ct.units = "HU";
    const double read_ms = Ms(start);
    nlohmann::json k{{"voxels", ct.VoxelCount()}, {"read_ms", read_ms}};
    start = Clock::now();
    const VolumeStats cpu_stats = ComputeStatsCpu(ct.voxels.data(), ct.voxels.size());
    k["stats_cpu_ms"] = Ms(start);
    const Run cpu = TimeLung(ct, repeat, [] { return lung::MakeCpuLungBackend(); });
    k["lung_cpu_ms"] = cpu.ms;
    k["lung_cpu_ops_ms"] = cpu.ops;
    std::printf("%-16s CPU: stats %7.1f ms, lung-emphysema %8.1f ms (", kernel.c_str(), k["stats_cpu_ms"].get<double>(), cpu.ms);
    for (const auto& [op, ms] : cpu.ops) std::printf(" %s %.1f", op.c_str(), ms);
    std::printf(" ms)\n");
    if (gpu.found) {
#if PROCNODE_HAVE_CUDA
      cuda::ReduceMinMaxSum(ct.voxels.data(), ct.voxels.size());  // context and module load, not timed
      start = Clock::now();
      const auto sums = cuda::ReduceMinMaxSum(ct.voxels.data(), ct.voxels.size());
      k["stats_gpu_ms"] = Ms(start);
      const bool stats_same = sums.min == cpu_stats.min && sums.max == cpu_stats.max;
      TimeLung(ct, 1, [] { return lung::MakeCudaLungBackend(); });  // warm-up
      DeviceMemoryPeak peak;
      const Run on_gpu = TimeLung(ct, repeat, [] { return lung::MakeCudaLungBackend(); });
      k["gpu_peak_memory_bytes"] = peak.Stop();
      k["lung_gpu_ms"] = on_gpu.ms;
      k["lung_gpu_ops_ms"] = on_gpu.ops;
      k["lung_speedup"] = cpu.ms / on_gpu.ms;
      const bool same = on_gpu.result.labels == cpu.result.labels && on_gpu.result.histograms == cpu.result.histograms;
      k["parity"] = same && stats_same;
      identical = identical && same && stats_same;
      std::printf("%-16s GPU: stats %7.1f ms, lung-emphysema %8.1f ms (", kernel.c_str(), k["stats_gpu_ms"].get<double>(), on_gpu.ms);
      for (const auto& [op, ms] : on_gpu.ops) std::printf(" %s %.1f", op.c_str(), ms);
      std::printf(" ms); %.1fx; peak device memory %.0f MiB; %s\n", cpu.ms / on_gpu.ms,
                  static_cast<double>(k["gpu_peak_memory_bytes"].get<std::size_t>()) / (1 << 20),
                  same && stats_same ? "identical results" : "RESULTS DIFFER");
#endif
    }
    report["kernels"][kernel] = k;
  }
  if (!json_path.empty()) std::ofstream(json_path) << report.dump(2) << "\n";
  if (!gpu.found) {
    std::cout << "no GPU: " << gpu.reason << " (exit 3: CPU figures only)\n";
    return 3;
  }
  return identical ? 0 : 1;
}

}  // namespace
}  // namespace procnode

int main(int argc, char** argv) {
  try {
    return procnode::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "gpu_kit_bench: " << e.what() << "\n";
    return 1;
  }
}
