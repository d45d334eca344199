#include "node/metrics.h"

#include <cstdio>

namespace procnode {
namespace {

std::string Number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// A bucket bound as written in configuration ("0.05", "2.5", "300").
std::string Bound(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

std::string Labels(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [key, value] : labels) out += (out.size() > 1 ? "," : "") + key + "=\"" + PrometheusLabel(value) + "\"";
  return out + "}";
}

}  // namespace

std::string PrometheusLabel(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

void Metrics::JobFinished(const std::string& processor, const std::string& outcome, const std::string& device,
                          bool gpu_fallback, const std::map<std::string, double>& stage_ms) {
  std::lock_guard lock(mutex_);
  ++jobs_[{processor, outcome}];
  if (!device.empty()) ++devices_[device];
  if (gpu_fallback) ++gpu_fallbacks_;
  for (const auto& [stage, ms] : stage_ms) {
    Histogram& h = stages_[stage];
    const double seconds = ms / 1000.0;
    for (std::size_t i = 0; i < kStageBuckets.size(); ++i) {
      if (seconds <= kStageBuckets[i]) {
        ++h.buckets[i];
        break;
      }
    }
    ++h.count;
    h.sum += seconds;
  }
}

std::string Metrics::Exposition(const std::vector<Gauge>& gauges) const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out += "# HELP procnode_jobs_finished_total Jobs this process ran, by processor and outcome.\n"
           "# TYPE procnode_jobs_finished_total counter\n";
    for (const auto& [key, count] : jobs_) {
      out += "procnode_jobs_finished_total" + Labels({{"processor", key.first}, {"outcome", key.second}}) + " " +
             std::to_string(count) + "\n";
    }
    out += "# HELP procnode_jobs_device_total Jobs this process ran, by the device that computed them.\n"
           "# TYPE procnode_jobs_device_total counter\n";
    for (const auto& [device, count] : devices_) {
      out += "procnode_jobs_device_total" + Labels({{"device", device}}) + " " + std::to_string(count) + "\n";
    }
    out += "# HELP procnode_gpu_fallbacks_total Jobs that preferred a GPU and ran on the CPU.\n"
           "# TYPE procnode_gpu_fallbacks_total counter\n"
           "procnode_gpu_fallbacks_total " + std::to_string(gpu_fallbacks_) + "\n";
    out += "# HELP procnode_stage_duration_seconds Duration of each pipeline stage of the jobs this process ran.\n"
           "# TYPE procnode_stage_duration_seconds histogram\n";
    for (const auto& [stage, h] : stages_) {
      uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kStageBuckets.size(); ++i) {
        cumulative += h.buckets[i];
        out += "procnode_stage_duration_seconds_bucket" + Labels({{"stage", stage}, {"le", Bound(kStageBuckets[i])}}) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += "procnode_stage_duration_seconds_bucket" + Labels({{"stage", stage}, {"le", "+Inf"}}) + " " +
             std::to_string(h.count) + "\n";
      out += "procnode_stage_duration_seconds_sum" + Labels({{"stage", stage}}) + " " + Number(h.sum) + "\n";
      out += "procnode_stage_duration_seconds_count" + Labels({{"stage", stage}}) + " " + std::to_string(h.count) + "\n";
    }
  }
  for (const auto& gauge : gauges) {
    out += "# HELP " + gauge.name + " " + gauge.help + "\n# TYPE " + gauge.name + " gauge\n";
    for (const auto& [labels, value] : gauge.samples) out += gauge.name + Labels(labels) + " " + Number(value) + "\n";
  }
  return out;
}

}  // namespace procnode
