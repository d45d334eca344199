// The "volume-stats" processor: voxel count, minimum, maximum and mean (CPU or CUDA).
#include <memory>

#include "core/format.h"
#include "processors/builtin.h"
#include "processors/volume_stats.h"

namespace procnode {
namespace {

// 16777216 -> "16 777 216".
std::string Grouped(uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(' ');
    out.push_back(digits[i]);
  }
  return out;
}

class VolumeStatsProcessor : public Processor {
 public:
  VolumeStatsProcessor() {
    info_.name = "volume-stats";
    info_.version = "1";
    info_.description = "Voxel count, minimum, maximum and mean of the series in modality units";
    info_.report_title = "Volume statistics";
    info_.has_gpu_implementation = true;
    info_.gpu_bytes_per_voxel = 4;
    info_.host_bytes_per_voxel = 6;  // float volume + the decoded frame buffers
  }
  const ProcessorInfo& Info() const override { return info_; }
  ProcessorOutput Run(const Volume& v, const nlohmann::json&, const ProcessorContext& context) const override {
    if (context.progress) context.progress(0, "statistics");
    const VolumeStats stats = ComputeStats(v.voxels.data(), v.voxels.size(), context.device);
    ProcessorOutput out;
    out.measurements = {{"count", stats.count}, {"min", stats.min}, {"max", stats.max}, {"mean", stats.mean}};
    const std::string unit = v.units.empty() ? "" : " " + v.units;
    out.report = {{v.units.empty() ? "Figures (modality units)" : "Figures (" + v.units + ")",
                   {{"Voxel count", Grouped(stats.count)},
                    {"Minimum", FormatNumber("%.1f", stats.min) + unit},
                    {"Maximum", FormatNumber("%.1f", stats.max) + unit},
                    {"Mean", FormatNumber("%.2f", stats.mean) + unit}}}};
    out.device = stats.device;
    out.device_note = stats.note;
    return out;
  }

 private:
  ProcessorInfo info_;
};

}  // namespace

void RegisterVolumeStats(ProcessorRegistry& registry) { registry.Add(std::make_unique<VolumeStatsProcessor>()); }

}  // namespace procnode
