#include "node/metrics.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

TEST(Metrics, CountersAndCumulativeHistogramsInTheTextFormat) {
  Metrics m;
  m.JobFinished("lung-emphysema", "done", "cpu", true, {{"process", 800}, {"store", 30}});
  m.JobFinished("lung-emphysema", "done", "gpu", false, {{"process", 70}});
  m.JobFinished("volume-stats", "invalid-input", "", false, {});
  const std::string text = m.Exposition({{"procnode_jobs", "Jobs by state.", {{{{"state", "queued"}}, 3}}},
                                         {"procnode_odd", "Escaping.", {{{{"name", "a\"b\\c\nd"}}, 1.5}}}});
  EXPECT_NE(text.find("# TYPE procnode_jobs_finished_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_jobs_finished_total{outcome=\"done\",processor=\"lung-emphysema\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("procnode_jobs_finished_total{outcome=\"invalid-input\",processor=\"volume-stats\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_jobs_device_total{device=\"gpu\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_gpu_fallbacks_total 1\n"), std::string::npos);
  // 0.07 s and 0.8 s: cumulative buckets, +Inf equals the count, the sum in seconds.
  EXPECT_NE(text.find("procnode_stage_duration_seconds_bucket{le=\"0.05\",stage=\"process\"} 0\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("procnode_stage_duration_seconds_bucket{le=\"0.1\",stage=\"process\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_stage_duration_seconds_bucket{le=\"1\",stage=\"process\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_stage_duration_seconds_bucket{le=\"+Inf\",stage=\"process\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_stage_duration_seconds_count{stage=\"process\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_stage_duration_seconds_sum{stage=\"process\"} 0.87"), std::string::npos);
  EXPECT_NE(text.find("# TYPE procnode_jobs gauge\nprocnode_jobs{state=\"queued\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("procnode_odd{name=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace procnode
