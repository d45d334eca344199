// Prometheus metrics of one node process (text exposition format 0.0.4): counters and histograms
// it keeps itself (jobs it ran by processor and outcome, stage durations, devices used, GPU
// fallbacks), and gauges read when scraped (queue depth by state, oldest queued job, intake,
// deliveries by destination and state, live workers by kind and GPU, database up). Counters are
// per process, as Prometheus expects; gauges of the database are the same from every node.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace procnode {

// Upper bounds (seconds) of the stage-duration histogram buckets; +Inf is implied.
inline constexpr std::array<double, 12> kStageBuckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

class Metrics {
 public:
  // A job this process ran: its processor, outcome ("done", "cancelled", or the failure's class:
  // "invalid_input", "unavailable", "unsupported", "processor_failed", "internal", ...), the device
  // that ran ("cpu", "gpu"; empty when it did not get that far), whether a GPU was preferred and the
  // CPU ran instead, and its stage timings (stage -> milliseconds).
  void JobFinished(const std::string& processor, const std::string& outcome, const std::string& device, bool gpu_fallback,
                   const std::map<std::string, double>& stage_ms);

  // One sample of a gauge, read at scrape time.
  struct Gauge {
    std::string name, help;
    std::vector<std::pair<std::map<std::string, std::string>, double>> samples;  // labels -> value
  };
  // The whole exposition: the counters and histograms here, then `gauges`.
  std::string Exposition(const std::vector<Gauge>& gauges) const;

 private:
  struct Histogram {
    std::array<uint64_t, kStageBuckets.size()> buckets{};  // cumulative on output, not here
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, uint64_t> jobs_;  // (processor, outcome)
  std::map<std::string, uint64_t> devices_;                      // device -> jobs
  uint64_t gpu_fallbacks_ = 0;
  std::map<std::string, Histogram> stages_;                      // stage -> durations
};

// A label value escaped for the text format (backslash, double quote, line feed).
std::string PrometheusLabel(const std::string& value);

}  // namespace procnode
