// Routing cases over the real shared studies, as data (pipeline/testdata/routing-cases.json):
// each case names a study folder and calling AE title and lists exactly the rules that fire.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/routing_inputs.h"
#include "processors/builtin.h"
#include "dicom/folder_source.h"

namespace procnode {
namespace {

nlohmann::json Cases() {
  std::ifstream in(std::string(PROCNODE_SOURCE_DIR) + "/pipeline/testdata/routing-cases.json");
  return nlohmann::json::parse(in);
}

class RoutingCase : public ::testing::TestWithParam<nlohmann::json> {};

TEST_P(RoutingCase, ExactlyTheListedRulesFire) {
  const auto& c = GetParam();
  const auto parsed = ParseRuleSet(Cases()["rules"].dump(), DefaultVocabulary(BuiltinProcessors()));
  ASSERT_TRUE(parsed.rule_set);
  FolderStudySource source(std::string(PROCNODE_SHARED_DATA) + "/" + c["study"].get<std::string>());
  StudyAttributes study = ReadStudyAttributes(source, "folder");
  study.calling_aet = c["calling_aet"];
  std::vector<std::string> fired;
  for (const auto& e : EvaluateRuleSet(*parsed.rule_set, study)) {
    if (e.fired) fired.push_back(e.rule_id);
  }
  EXPECT_EQ(fired, c["fires"].get<std::vector<std::string>>()) << c["study"];
}

INSTANTIATE_TEST_SUITE_P(SharedStudies, RoutingCase, ::testing::ValuesIn(Cases()["cases"].get<std::vector<nlohmann::json>>()),
                         [](const auto& info) { return "case_" + std::to_string(info.index); });

TEST(RoutingDefaults, TheBuiltInRuleSetIsValidAndMatchesEveryStudy) {
  const auto parsed = ParseRuleSet(DefaultRuleSetJson(), DefaultVocabulary(BuiltinProcessors()));
  ASSERT_TRUE(parsed.rule_set);
  FolderStudySource source(std::string(PROCNODE_SHARED_DATA) + "/mr-brain-sag-mprage");
  const auto study = ReadStudyAttributes(source, "folder");
  EXPECT_TRUE(EvaluateRuleSet(*parsed.rule_set, study).at(0).fired);
}

}  // namespace
}  // namespace procnode
