#include "core/job_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace procnode {
namespace {

std::string ErrorOf(const std::string& text) {
  try {
    ParseJobSpec(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JobSpec, RoundTripsEveryField) {
  JobSpec spec{.processor = "lung-emphysema", .processor_version = "2", .parameters = {{"variant", "accurate"}, {"percentile", 15}},
               .device = "gpu", .anonymize = AnonymizationSpec{.project = "copd", .options = {"retain-uids"}, .results_to_clinical = true},
               .destinations = {"pacs", "research"}, .executor = "slurm", .results = {"pdf", "seg", "sc"},
               .requirements = {.needs_gpu = true, .device_memory_bytes = 218103808, .host_memory_bytes = 369098752}};
  const JobSpec back = ParseJobSpec(SerializeJobSpec(spec));
  EXPECT_EQ(back, spec);
  const JobSpec plain{.processor = "volume-stats"};
  EXPECT_EQ(ParseJobSpec(SerializeJobSpec(plain)), plain);
  EXPECT_FALSE(ParseJobSpec(SerializeJobSpec(plain)).anonymize);
  EXPECT_EQ(JobSpecToJson(plain)["anonymize"], nullptr);
  EXPECT_FALSE(JobSpecToJson(plain).contains("executor"));  // as specs were before executors existed
  EXPECT_FALSE(JobSpecToJson(plain).contains("results"));   // the processor's defaults
  // Other result kinds are another job: the study is processed again for them.
  JobSpec with_sc = plain;
  with_sc.results = {"pdf", "sc"};
  EXPECT_NE(KeyParametersJson(with_sc), KeyParametersJson(plain));
  EXPECT_EQ(KeyParametersJson(plain), "{}");
}

TEST(JobSpec, AStoredSpecOfTheWrongShapeNamesTheField) {
  EXPECT_NE(ErrorOf("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"version": 3})").find("version 3 is not one"), std::string::npos);
  const std::string base = R"({"version": 2, "processor": "p", "processor_version": "1", "parameters": {}, )";
  EXPECT_NE(ErrorOf(base + R"("device": "tpu"})").find("device must be auto, cpu or gpu"), std::string::npos);
  EXPECT_NE(ErrorOf(base + R"("device": "cpu", "destinations": [1]})").find("destinations must be a list of strings"), std::string::npos);
  EXPECT_NE(ErrorOf(base + R"("device": "cpu", "anonymize": {"results": "both"}})").find("anonymize.results"), std::string::npos);
  EXPECT_NE(ErrorOf(base + R"("device": "cpu", "requirements": {"host_memory_bytes": -1}})").find("host_memory_bytes must be a byte count"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"version": 2, "processor_version": "1"})").find("processor is missing"), std::string::npos);
  EXPECT_EQ(ErrorOf(base + R"("device": "cpu"})"), "");
}

TEST(JobSpec, KeyParametersAreWrittenAsTheFirstWaveWroteThem) {
  JobSpec spec{.processor = "volume-stats", .parameters = {{"b", 1}, {"a", true}}};
  EXPECT_EQ(KeyParametersJson(spec), R"({"a":true,"b":1})");
  spec.device = "cpu";
  spec.destinations = {"pacs"};
  spec.anonymize = AnonymizationSpec{.project = "rule:r"};
  spec.requirements.host_memory_bytes = 99;
  EXPECT_EQ(KeyParametersJson(spec),
            R"({"a":true,"anonymize":{"options":[],"project":"rule:r","results":"pseudonymous"},"b":1,"destinations":["pacs"],"device":"cpu"})");
}

}  // namespace
}  // namespace procnode
