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

const Rule kRule{.id = "default", .version = 1, .pipeline = "volume-stats", .pipeline_version = "1"};

TEST(Routing, InputsAreEveryInstanceButProcnodesOwnResults) {
  EXPECT_EQ(InputInstances(Study({"a", "b"}, true)), (std::vector<std::string>{"a", "b"}));
}

TEST(Routing, KeyIgnoresInstanceOrderAndOurOwnResults) {
  EXPECT_EQ(IdempotencyKey("study", InputInstances(Study({"a", "b"}, false)), kRule),
            IdempotencyKey("study", InputInstances(Study({"b", "a"}, true)), kRule));
}

TEST(Routing, KeyChangesWithANewInstanceOrARuleVersion) {
  Rule rule = kRule;
  const auto base = IdempotencyKey("study", {"a", "b"}, rule);
  EXPECT_NE(base, IdempotencyKey("study", {"a", "b", "c"}, rule));
  rule.version = 2;
  EXPECT_NE(base, IdempotencyKey("study", {"a", "b"}, rule));
}

TEST(Routing, AStudyOfOnlyProcnodeResultsHasNoInputs) {
  std::vector<SeriesRef> only_results{
      {.id = "r1", .modality = "DOC", .instance_ids = {"pdf"}, .produced_by_procnode = true}};
  EXPECT_TRUE(InputInstances(only_results).empty());
}

}  // namespace
}  // namespace procnode
