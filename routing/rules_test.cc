#include "routing/rules.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

std::vector<SeriesRef> Study(std::vector<std::string> ct, bool with_result) {
  std::vector<SeriesRef> series{{.id = "s1", .modality = "CT", .instance_ids = std::move(ct)}};
  if (with_result) {
    series.push_back({.id = "r1", .modality = "DOC", .instance_ids = {"pdf1"},
                      .produced_by_procnode = true});
  }
  return series;
}

TEST(Routing, DefaultRuleSetMatchesEveryStudyWithInputs) {
  const auto jobs = PlanJobs("study", Study({"a", "b"}, false), DefaultRuleSet());
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].rule.id, "default");
  EXPECT_EQ(jobs[0].rule.pipeline, "volume-stats");
  EXPECT_EQ(jobs[0].input_instances, 2u);
}

TEST(Routing, KeyIgnoresInstanceOrderAndOurOwnResults) {
  const auto rules = DefaultRuleSet();
  const auto first = PlanJobs("study", Study({"a", "b"}, false), rules);
  const auto again = PlanJobs("study", Study({"b", "a"}, true), rules);
  EXPECT_EQ(first[0].idempotency_key, again[0].idempotency_key);
}

TEST(Routing, KeyChangesWithANewInstanceOrARuleVersion) {
  auto rules = DefaultRuleSet();
  const auto base = PlanJobs("study", Study({"a", "b"}, false), rules)[0].idempotency_key;
  EXPECT_NE(base, PlanJobs("study", Study({"a", "b", "c"}, false), rules)[0].idempotency_key);
  rules[0].version = 2;
  EXPECT_NE(base, PlanJobs("study", Study({"a", "b"}, false), rules)[0].idempotency_key);
}

TEST(Routing, AStudyOfOnlyProcnodeResultsCreatesNoJob) {
  std::vector<SeriesRef> only_results{
      {.id = "r1", .modality = "DOC", .instance_ids = {"pdf"}, .produced_by_procnode = true}};
  EXPECT_TRUE(PlanJobs("study", only_results, DefaultRuleSet()).empty());
}

}  // namespace
}  // namespace procnode
