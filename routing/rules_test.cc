#include "routing/rules.h"

#include <gtest/gtest.h>

#include "core/digest.h"

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

const Rule kRule{.id = "default", .version = 1, .spec = {.processor = "volume-stats", .processor_version = "1"}};

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

// Keys of jobs enqueued before the typed job specification: the device, anonymization and
// destinations were written among the parameters. The same study and rule must give the same key
// after the upgrade, or a study stable again would be processed twice.
TEST(Routing, TheKeyIsTheFirstWavesForTheSameRule) {
  Rule rule{.id = "research", .version = 4,
            .spec = {.processor = "lung-emphysema", .processor_version = "1", .parameters = {{"variant", "fast"}},
                     .device = "gpu", .anonymize = AnonymizationSpec{.project = "lungs", .options = {"retain-uids"}},
                     .destinations = {"pacs"}}};
  rule.spec.requirements.device_memory_bytes = 123;  // derived: not part of the key
  const std::string first_wave_material =
      "study=s\ninstance=a\ninstance=b\nrule=research@4\npipeline=lung-emphysema@1\n"
      "parameters={\"anonymize\":{\"options\":[\"retain-uids\"],\"project\":\"lungs\",\"results\":\"pseudonymous\"},"
      "\"destinations\":[\"pacs\"],\"device\":\"gpu\",\"variant\":\"fast\"}\n";
  EXPECT_EQ(IdempotencyKey("s", {"b", "a"}, rule), Sha256Hex(first_wave_material));
  rule.spec.device = "auto";
  rule.spec.anonymize.reset();
  rule.spec.destinations.clear();
  EXPECT_EQ(IdempotencyKey("s", {"a", "b"}, rule),
            Sha256Hex("study=s\ninstance=a\ninstance=b\nrule=research@4\npipeline=lung-emphysema@1\n"
                      "parameters={\"variant\":\"fast\"}\n"));
}

TEST(Routing, AStudyOfOnlyProcnodeResultsHasNoInputs) {
  std::vector<SeriesRef> only_results{
      {.id = "r1", .modality = "DOC", .instance_ids = {"pdf"}, .produced_by_procnode = true}};
  EXPECT_TRUE(InputInstances(only_results).empty());
}

}  // namespace
}  // namespace procnode
