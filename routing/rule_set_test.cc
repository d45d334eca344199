#include "routing/rule_set.h"

#include <gtest/gtest.h>

#include <set>

#include "routing/bids_mapping.h"

namespace procnode {
namespace {

RuleVocabulary Vocabulary() {
  RuleVocabulary v;
  v.keyword_to_tag = [](const std::string& keyword) -> std::optional<uint32_t> {
    static const std::map<std::string, uint32_t> kTags{{"Modality", 0x00080060}, {"BodyPartExamined", 0x00180015},
                                                       {"StudyDate", 0x00080020}, {"SliceThickness", 0x00180050},
                                                       {"ProtocolName", 0x00181030}};
    const auto it = kTags.find(keyword);
    return it == kTags.end() ? std::nullopt : std::optional<uint32_t>(it->second);
  };
  v.pipeline_parameters = {{"volume-stats", {}}, {"lung-emphysema", {"threshold"}}};
  v.destinations = {"PACS"};
  v.anonymization_options = {"modified-dates", "retain-uids"};
  return v;
}

std::vector<ValidationError> Errors(const std::string& json) { return ParseRuleSet(json, Vocabulary()).errors; }

RuleSet Parse(const std::string& json) {
  auto parsed = ParseRuleSet(json, Vocabulary());
  EXPECT_TRUE(parsed.rule_set) << (parsed.errors.empty() ? "" : parsed.errors[0].pointer + ": " + parsed.errors[0].reason);
  return parsed.rule_set.value_or(RuleSet{});
}

StudyAttributes Study(AttributeMap attributes, std::string calling = "CT01") {
  StudyAttributes s;
  s.id = "study";
  s.attributes = attributes;
  s.series = {{.id = "s1", .attributes = attributes, .instance_ids = {"i1", "i2"}}};
  s.calling_aet = std::move(calling);
  s.called_aet = "PROCNODE";
  return s;
}

std::vector<std::string> Fired(const RuleSet& rules, const StudyAttributes& study) {
  std::vector<std::string> ids;
  for (const auto& e : EvaluateRuleSet(rules, study)) {
    if (e.fired) ids.push_back(e.rule_id);
  }
  return ids;
}

std::string Rule(const std::string& id, const std::string& match, const std::string& extra = "") {
  return R"({"id": ")" + id + R"(", "match": )" + match + extra + R"(, "action": {"pipeline": "volume-stats"}})";
}

std::string Set(const std::vector<std::string>& rules, const std::string& mode = "all") {
  std::string body;
  for (const auto& r : rules) body += (body.empty() ? "" : ",") + r;
  return R"({"mode": ")" + mode + R"(", "rules": [)" + body + "]}";
}

const AttributeMap kChestCt{{0x00080060, "CT"}, {0x00180015, "CHEST"}, {0x00080020, "20190315"}, {0x00180050, "5.00"}};
const AttributeMap kBrainMr{{0x00080060, "MR"}, {0x00180015, "BRAIN"}};

TEST(StudyAttributes, AStudyOfOnlyProcnodeResultsHasNoInputSeries) {
  StudyAttributes study;
  EXPECT_FALSE(study.HasInputSeries());
  study.series.push_back({.id = "seg", .produced_by_procnode = true});
  EXPECT_FALSE(study.HasInputSeries());
  study.series.push_back({.id = "ct"});
  EXPECT_TRUE(study.HasInputSeries());
}

TEST(RuleSet, ErrorsNameTheJsonPointerAndTheReason) {
  const auto errors = Errors(Set({Rule("a", R"({"all": [{"attribute": "Modalty", "equals": "CT"}]})")}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].pointer, "/rules/0/match/all/0/attribute");
  EXPECT_EQ(errors[0].reason, "unknown attribute keyword \"Modalty\"");
}

TEST(RuleSet, ANumberTooLargeForADoubleIsNotJsonNotACrash) {  // found by fuzz_rules
  const auto errors = Errors(R"({"rules": [], "mode": 1e999999})");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].pointer, "");
  EXPECT_NE(errors[0].reason.find("not JSON"), std::string::npos) << errors[0].reason;
}

TEST(RuleSet, EveryKindOfMistakeIsRefusedWhereItIs) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"rules": [{"id": "a", "match": {"all": []}, "acton": {}}]})", "/rules/0/acton"},
      {R"({"rules": [{"id": "a", "match": {"all": []}, "action": {"pipeline": "segment-everything"}}]})", "/rules/0/action/pipeline"},
      {R"({"rules": [{"id": "a", "match": {"all": []}, "action": {"pipeline": "volume-stats", "parameters": {"x": 1}}}]})", "/rules/0/action/parameters/x"},
      {R"({"rules": [{"id": "a", "match": {"all": []}, "action": {"pipeline": "volume-stats", "destinations": ["NOWHERE"]}}]})", "/rules/0/action/destinations/0"},
      {R"({"rules": [{"id": "a", "match": {"attribute": "Modality", "regex": "(CT"}, "action": {"pipeline": "volume-stats"}}]})", "/rules/0/match/regex"},
      {R"({"rules": [{"id": "a", "match": {"attribute": "Modality", "equals": "CT", "in": ["MR"]}, "action": {"pipeline": "volume-stats"}}]})", "/rules/0/match"},
      {R"({"rules": [{"id": "a", "match": {"attribute": "Modality"}, "action": {"pipeline": "volume-stats"}}]})", "/rules/0/match"},
      {R"({"rules": [{"id": "a", "match": {"attribute": "StudyDate", "range": ["2019"]}, "action": {"pipeline": "volume-stats"}}]})", "/rules/0/match/range"},
      {R"({"rules": [{"id": "a", "match": {"all": []}, "action": {"pipeline": "volume-stats", "device": "tpu"}}]})", "/rules/0/action/device"},
      {R"({"mode": "some", "rules": []})", "/mode"},
      {"[1, 2", ""},
  };
  for (const auto& [json, pointer] : cases) {
    const auto errors = Errors(json);
    ASSERT_FALSE(errors.empty()) << json;
    EXPECT_EQ(errors[0].pointer, pointer) << json << "\n" << errors[0].reason;
  }
  const auto duplicate = Errors(Set({Rule("a", R"({"all": []})"), Rule("a", R"({"all": []})")}));
  ASSERT_EQ(duplicate.size(), 1u);
  EXPECT_EQ(duplicate[0].pointer, "/rules/1/id");
}

TEST(RuleSet, AnExecutorIsLocalOrSlurmAndSlurmOnlyWhereConfigured) {
  RuleVocabulary v = Vocabulary();
  auto parse = [&](const std::string& executor) {
    return ParseRuleSet(R"({"rules": [{"id": "r", "match": {"all": []}, "action": {"pipeline": "volume-stats", "executor": )" +
                            executor + "}}]}",
                        v);
  };
  auto refused = parse(R"("slurm")");
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0].pointer, "/rules/0/action/executor");
  EXPECT_NE(refused.errors[0].reason.find("ProcNode.Executor"), std::string::npos);
  EXPECT_EQ(parse(R"("pbs")").errors.size(), 1u);
  v.slurm = true;
  const auto parsed = parse(R"("slurm")");
  ASSERT_TRUE(parsed.rule_set) << parsed.errors[0].reason;
  EXPECT_EQ(parsed.rule_set->rules[0].action.executor, "slurm");
  EXPECT_TRUE(parse(R"("local")").rule_set);
}

TEST(RuleSet, ABidsDestinationNeedsAnAnonymizedRouteAndAValidMapping) {
  RuleVocabulary v = Vocabulary();
  v.destinations.insert("RESEARCH");
  v.bids_destinations = {"RESEARCH"};
  auto errors = [&](const std::string& action) {
    return ParseRuleSet(R"({"rules": [{"id": "r", "match": {"all": []}, "action": )" + action + "}]}", v).errors;
  };
  const std::string mapping = R"([{"match": {"SeriesDescription": "*t1*"}, "datatype": "anat", "suffix": "T1w"}])";
  EXPECT_TRUE(errors(R"({"pipeline": "volume-stats", "destinations": ["RESEARCH"], "anonymize": true, "bids": )" + mapping + "}").empty());
  auto e = errors(R"({"pipeline": "volume-stats", "destinations": ["RESEARCH"], "bids": )" + mapping + "}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].pointer, "/rules/0/action/destinations/0");
  e = errors(R"({"pipeline": "volume-stats", "destinations": ["RESEARCH"], "anonymize": true})");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].pointer, "/rules/0/action/bids");
  e = errors(R"({"pipeline": "volume-stats", "anonymize": true, "bids": [{"match": {"PatientName": "*"}, "datatype": "xyz",
                 "suffix": "T1-w", "entities": {"task": "rest!", "sub": "1"}}]})");
  std::set<std::string> pointers;
  for (const auto& error : e) pointers.insert(error.pointer);
  EXPECT_EQ(pointers, (std::set<std::string>{"/rules/0/action/bids/0/match/PatientName", "/rules/0/action/bids/0/datatype",
                                             "/rules/0/action/bids/0/suffix", "/rules/0/action/bids/0/entities/task",
                                             "/rules/0/action/bids/0/entities/sub"}));
  EXPECT_TRUE(BidsPatternMatches("*MPRAGE*", "t1 mprage sag"));
  EXPECT_FALSE(BidsPatternMatches("dti*", "rest dti"));
}

TEST(RuleSet, ChestRuleMatchesTheChestCtAndNotTheBrainMr) {
  const auto rules = Parse(Set({Rule("chest", R"({"all": [{"attribute": "Modality", "equals": "CT"},
                                                          {"attribute": "BodyPartExamined", "in": ["CHEST", "LUNG"]}]})"),
                                Rule("brain", R"({"all": [{"attribute": "Modality", "equals": "MR"},
                                                          {"attribute": "BodyPartExamined", "equals": "BRAIN"}]})")}));
  EXPECT_EQ(Fired(rules, Study(kChestCt)), std::vector<std::string>{"chest"});
  EXPECT_EQ(Fired(rules, Study(kBrainMr)), std::vector<std::string>{"brain"});
}

TEST(RuleSet, AMissingAttributeNeverPassesEvenUnderNotOrAny) {
  const auto rules = Parse(Set({Rule("not-chest", R"({"not": {"attribute": "BodyPartExamined", "equals": "CHEST"}})"),
                                Rule("not-equals", R"({"attribute": "BodyPartExamined", "not-equals": "CHEST"})"),
                                Rule("any", R"({"any": [{"attribute": "BodyPartExamined", "equals": "X"},
                                                        {"attribute": "Modality", "equals": "XX"}]})"),
                                Rule("missing", R"({"attribute": "BodyPartExamined", "missing": true})")}));
  const StudyAttributes no_body_part = Study({{0x00080060, "CT"}});
  EXPECT_EQ(Fired(rules, no_body_part), std::vector<std::string>{"missing"});
  const auto evaluations = EvaluateRuleSet(rules, no_body_part);
  ASSERT_TRUE(evaluations[0].first_failure);
  EXPECT_EQ(evaluations[0].first_failure->actual, "(missing)");
  EXPECT_EQ(evaluations[0].first_failure->outcome, "unknown");
}

TEST(RuleSet, RegexIsAFullMatchAndCaseIsAnOption) {
  const auto rules = Parse(Set({Rule("full", R"({"attribute": "ProtocolName", "regex": "chest"})"),
                                Rule("any-case", R"({"attribute": "ProtocolName", "regex": ".*CHEST.*", "case_sensitive": false})"),
                                Rule("equals-any-case", R"({"attribute": "ProtocolName", "equals": "2 CHEST C-/THORAX", "case_sensitive": false})")}));
  const auto fired = Fired(rules, Study({{0x00181030, "2 Chest C-/Thorax"}}));
  EXPECT_EQ(fired, (std::vector<std::string>{"any-case", "equals-any-case"}));
}

// Issue 12, item 5: a request nesting conditions 100 deep killed Orthanc (recursive parser on a
// small HTTP thread stack). Now refused at a documented depth, naming the first condition past it.
TEST(RuleSet, ConditionsNestedPastTheLimitAreRefusedWithTheirPointer) {
  auto nest = [](int levels, const std::string& group) {
    std::string open, close;
    for (int i = 0; i < levels; ++i) {
      open += group == "not" ? R"({"not": )" : R"({")" + group + R"(": [)";
      close += group == "not" ? "}" : "]}";
    }
    return open + R"({"attribute": "Modality", "equals": "CT"})" + close;
  };
  // 15 groups around a leaf: 16 levels, the limit; accepted and evaluated.
  const auto deepest = Parse(Set({Rule("deep", nest(15, "all"))}));
  EXPECT_EQ(Fired(deepest, Study(kChestCt)), std::vector<std::string>{"deep"});
  for (const std::string group : {"not", "all", "any"}) {
    const auto errors = Errors(Set({Rule("deep", nest(25, group))}));
    ASSERT_EQ(errors.size(), 1u) << group;
    std::string pointer = "/rules/0/match";
    for (int i = 0; i < kMaxConditionDepth; ++i) pointer += group == "not" ? "/not" : "/" + group + "/0";
    EXPECT_EQ(errors[0].pointer, pointer) << group;
    EXPECT_NE(errors[0].reason.find("more than 16 levels"), std::string::npos) << errors[0].reason;
  }
}

TEST(RuleSet, JsonNestedPastTheLimitIsRefusedBeforeItIsRead) {
  const std::string deep = R"({"rules": [{"id": "a", "match": )" + std::string(1000, '[') + std::string(1000, ']') + "}]}";
  const auto errors = Errors(deep);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].pointer, "");
  EXPECT_NE(errors[0].reason.find("nested more than 64 levels"), std::string::npos) << errors[0].reason;
}

// Item 6: "([0-9.]+)+Z" against a 64-character UID held a thread at 100 % CPU with std::regex.
// RE2 matches it in linear time; this test finishes at once, or hangs CI if the engine regresses.
TEST(RuleSet, CatastrophicBacktrackingPatternsMatchInLinearTime) {
  const auto rules = Parse(Set({Rule("uid", R"({"attribute": "ProtocolName", "regex": "([0-9.]+)+Z"})")}));
  const std::string uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320.1268071029.32.99";
  EXPECT_TRUE(Fired(rules, Study({{0x00181030, uid}})).empty());
  EXPECT_EQ(Fired(rules, Study({{0x00181030, uid + "Z"}})), std::vector<std::string>{"uid"});
}

TEST(RuleSet, RegexesRe2CannotRunInLinearTimeOrThatAreTooBigAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"((a)\1)", "RE2 accepts"},                       // backreference
      {R"(CT(?=X))", "RE2 accepts"},                      // lookahead
      {std::string(200, '(') + "a" + std::string(200, ')'), "nests groups more than 16"},
      {std::string(600, 'a'), "longer than 512 bytes"},
  };
  for (const auto& [pattern, reason] : cases) {
    const auto errors = Errors(Set({Rule("r", R"({"attribute": "Modality", "regex": )" + nlohmann::json(pattern).dump() + "}")}));
    ASSERT_EQ(errors.size(), 1u) << pattern;
    EXPECT_EQ(errors[0].pointer, "/rules/0/match/regex") << pattern;
    EXPECT_NE(errors[0].reason.find(reason), std::string::npos) << pattern << ": " << errors[0].reason;
  }
  // Groups inside a character class or escaped are not nesting.
  EXPECT_TRUE(Errors(Set({Rule("r", R"j({"attribute": "Modality", "regex": "[((((((((((((((((((]+\\(x\\)"})j")})).empty());
}

TEST(RuleSet, RangesCompareNumbersAndDatesInclusively) {
  const auto rules = Parse(Set({Rule("thin", R"({"attribute": "SliceThickness", "range": [0.5, 5]})"),
                                Rule("thinner", R"({"attribute": "SliceThickness", "less": 5})"),
                                Rule("recent", R"({"attribute": "StudyDate", "greater": "20190101"})"),
                                Rule("q1-2019", R"({"attribute": "StudyDate", "range": ["20190101", "20190331"]})"),
                                Rule("not-a-number", R"({"attribute": "Modality", "greater": 3})")}));
  EXPECT_EQ(Fired(rules, Study(kChestCt)), (std::vector<std::string>{"thin", "recent", "q1-2019"}));
}

TEST(RuleSet, CallingAndCalledAeTitlesAreConditions) {
  const auto rules = Parse(Set({Rule("from-ct01", R"({"attribute": "CallingAET", "equals": "CT01"})"),
                                Rule("to-us", R"({"attribute": "CalledAET", "in": ["PROCNODE"]})")}));
  EXPECT_EQ(Fired(rules, Study(kChestCt, "CT01")), (std::vector<std::string>{"from-ct01", "to-us"}));
  EXPECT_EQ(Fired(rules, Study(kChestCt, "MR02")), (std::vector<std::string>{"to-us"}));
}

TEST(RuleSet, FirstMatchStopsAtTheHighestPriorityAndFallbackOnlyWhenNothingElse) {
  const auto first = Parse(Set({Rule("low", R"({"all": []})"), Rule("high", R"({"all": []})", R"(, "priority": 5)"),
                                Rule("rest", R"({"all": []})", R"(, "fallback": true)")},
                               "first-match"));
  EXPECT_EQ(Fired(first, Study(kChestCt)), std::vector<std::string>{"high"});
  const auto fallback = Parse(Set({Rule("mr", R"({"attribute": "Modality", "equals": "MR"})"),
                                   Rule("rest", R"({"all": []})", R"(, "fallback": true)")}));
  EXPECT_EQ(Fired(fallback, Study(kChestCt)), std::vector<std::string>{"rest"});
  EXPECT_EQ(Fired(fallback, Study(kBrainMr)), std::vector<std::string>{"mr"});
}

TEST(RuleSet, SeriesRulesFireForTheMatchingSeriesOnlyAndPlanOneJobEach) {
  auto rules = Parse(Set({Rule("ct-series", R"({"attribute": "Modality", "equals": "CT"})", R"(, "level": "series")")}));
  rules.version = 3;
  StudyAttributes study = Study({{0x00080060, "CT"}});
  study.series = {{.id = "ct", .attributes = {{0x00080060, "CT"}}, .instance_ids = {"a", "b"}},
                  {.id = "scout", .attributes = {{0x00080060, "SR"}}, .instance_ids = {"c"}},
                  {.id = "ours", .attributes = {{0x00080060, "CT"}}, .instance_ids = {"d"}, .produced_by_procnode = true}};
  const auto evaluations = EvaluateRuleSet(rules, study);
  ASSERT_EQ(evaluations.size(), 1u);
  EXPECT_EQ(evaluations[0].series_ids, std::vector<std::string>{"ct"});
  const auto jobs = PlanJobs(rules, study, evaluations);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].series_id, "ct");
  EXPECT_EQ(jobs[0].input_instances, 2u);
  EXPECT_EQ(jobs[0].rule.version, 3);
}

TEST(RuleSet, APipelineUpgradeChangesTheIdempotencyKeySoTheStudyIsProcessedAgain) {
  const std::string json = Set({Rule("ct", R"({"attribute": "Modality", "equals": "CT"})")});
  const StudyAttributes study = Study({{0x00080060, "CT"}});
  auto plan = [&](const std::string& version) {
    RuleVocabulary v = Vocabulary();
    if (!version.empty()) v.pipeline_versions["volume-stats"] = version;
    const auto parsed = ParseRuleSet(json, v);
    EXPECT_TRUE(parsed.rule_set);
    const auto jobs = PlanJobs(*parsed.rule_set, study, EvaluateRuleSet(*parsed.rule_set, study));
    EXPECT_EQ(jobs.size(), 1u);
    return jobs.at(0);
  };
  const auto unversioned = plan(""), v1 = plan("1.0.0"), again = plan("1.0.0"), v2 = plan("1.1.0");
  EXPECT_EQ(unversioned.rule.spec.processor_version, "1");
  EXPECT_EQ(v2.rule.spec.processor_version, "1.1.0");
  EXPECT_EQ(v1.idempotency_key, again.idempotency_key) << "same study, rules and version: the same job";
  EXPECT_NE(v1.idempotency_key, v2.idempotency_key) << "a new version processes the study again";
}

TEST(RuleSet, ResultsNameKnownKindsAnSrNeedsItsSegAndTheJobCarriesThem) {
  RuleVocabulary v = Vocabulary();
  v.result_names = {"pdf", "seg", "sr", "derived", "sc"};
  auto parse = [&](const std::string& results) {
    return ParseRuleSet(R"({"rules": [{"id": "r", "match": {"attribute": "Modality", "equals": "CT"}, "action": )"
                        R"({"pipeline": "volume-stats", "results": )" + results + "}}]}",
                        v);
  };
  const auto unknown = parse(R"(["pdf", "movie"])");
  ASSERT_EQ(unknown.errors.size(), 1u);
  EXPECT_EQ(unknown.errors[0].pointer, "/rules/0/action/results/1");
  EXPECT_NE(unknown.errors[0].reason.find("unknown result kind \"movie\" (known: "), std::string::npos) << unknown.errors[0].reason;
  const auto lone_sr = parse(R"(["pdf", "sr"])");
  ASSERT_EQ(lone_sr.errors.size(), 1u);
  EXPECT_EQ(lone_sr.errors[0].pointer, "/rules/0/action/results");
  EXPECT_EQ(parse("[]").errors.size(), 1u);
  EXPECT_EQ(parse(R"("pdf")").errors.size(), 1u);
  const auto parsed = parse(R"(["pdf", "seg", "sc"])");
  ASSERT_TRUE(parsed.rule_set) << parsed.errors[0].reason;
  const StudyAttributes study = Study({{0x00080060, "CT"}});
  const auto jobs = PlanJobs(*parsed.rule_set, study, EvaluateRuleSet(*parsed.rule_set, study));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].rule.spec.results, (std::vector<std::string>{"pdf", "seg", "sc"}));
}

TEST(RuleSet, DisabledRulesNeverFireAndSayWhy) {
  const auto rules = Parse(Set({Rule("off", R"({"all": []})", R"(, "enabled": false)")}));
  const auto evaluations = EvaluateRuleSet(rules, Study(kChestCt));
  EXPECT_FALSE(evaluations[0].fired);
  EXPECT_EQ(evaluations[0].why, "disabled");
}

TEST(RuleSet, ARuleWaitsForItsSeriesUpToItsMaximumWait) {
  const auto rules = Parse(Set({Rule("with-report", R"({"attribute": "Modality", "equals": "CT"})",
                                     R"(, "wait_for": {"series": {"attribute": "Modality", "equals": "SR"}, "max_wait_seconds": 60})")}));
  StudyAttributes study = Study(kChestCt);
  auto e = EvaluateRuleSet(rules, study, 10);
  EXPECT_TRUE(e[0].waiting);
  EXPECT_FALSE(e[0].fired);
  EXPECT_TRUE(EvaluateRuleSet(rules, study, 61)[0].fired) << "after its maximum wait the rule is evaluated as it is";
  study.series.push_back({.id = "sr", .attributes = {{0x00080060, "SR"}}, .instance_ids = {"r"}});
  e = EvaluateRuleSet(rules, study, 10);
  EXPECT_FALSE(e[0].waiting);
  EXPECT_TRUE(e[0].fired);
}

TEST(RuleSet, SeriesShortOfImagesInAcquisitionAreIncomplete) {
  StudyAttributes study = Study(kChestCt);
  study.series = {{.id = "whole", .attributes = {{0x00201002, "2"}}, .instance_ids = {"a", "b"}},
                  {.id = "partial", .attributes = {{0x00201002, "64"}}, .instance_ids = {"a"}},
                  {.id = "unknown", .attributes = {}, .instance_ids = {"a"}}};
  EXPECT_EQ(IncompleteSeries(study), std::vector<std::string>{"partial"});
}

TEST(RuleSet, SeriesShortOfTheirTemporalPositionsOrPetSlicesAreIncomplete) {
  StudyAttributes study = Study(kChestCt);
  const std::vector<std::string> six{"1", "2", "3", "4", "5", "6"}, five{"1", "2", "3", "4", "5"};
  study.series = {{.id = "fmri-whole", .attributes = {{0x00200105, "3"}}, .instance_ids = six},
                  {.id = "fmri-partial", .attributes = {{0x00200105, "3"}}, .instance_ids = five},
                  {.id = "fmri-first-volume", .attributes = {{0x00200105, "3"}}, .instance_ids = {"1", "2"}},
                  {.id = "pet-whole", .attributes = {{0x00540081, "3"}, {0x00200105, "2"}}, .instance_ids = six},
                  {.id = "pet-partial", .attributes = {{0x00540081, "4"}, {0x00200105, "2"}}, .instance_ids = six},
                  {.id = "enhanced", .attributes = {{0x00200105, "3"}, {0x00280008, "120"}}, .instance_ids = {"1"}}};
  EXPECT_EQ(IncompleteSeries(study), (std::vector<std::string>{"fmri-partial", "fmri-first-volume", "pet-partial"}));
}

TEST(RuleSet, AnAnonymizedRouteNamesItsProjectAndOptionsAndTheJobCarriesThem) {
  const std::string rule = R"({"rules": [{"id": "research", "match": {"all": []},
      "action": {"pipeline": "volume-stats", "anonymize": {"project": "lungs", "options": ["modified-dates"]}}}]})";
  const RuleSet rules = Parse(rule);
  EXPECT_TRUE(rules.rules[0].action.anonymize);
  StudyAttributes study = Study(kChestCt);
  const auto jobs = PlanJobs(rules, study, EvaluateRuleSet(rules, study));
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_TRUE(jobs[0].rule.spec.anonymize);
  EXPECT_EQ(jobs[0].rule.spec.anonymize->project, "lungs");
  EXPECT_EQ(jobs[0].rule.spec.anonymize->options, std::vector<std::string>{"modified-dates"});
  EXPECT_FALSE(jobs[0].rule.spec.anonymize->results_to_clinical);
  const RuleSet plain = Parse(R"({"rules": [{"id": "r2", "match": {"all": []}, "action": {"pipeline": "volume-stats", "anonymize": true}}]})");
  EXPECT_EQ(PlanJobs(plain, study, EvaluateRuleSet(plain, study))[0].rule.spec.anonymize.value().project, "rule:r2");
  const auto errors = Errors(R"({"rules": [{"id": "a", "match": {"all": []},
      "action": {"pipeline": "volume-stats", "anonymize": {"options": ["retain-everything"], "colour": 1}}}]})");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].pointer, "/rules/0/action/anonymize/colour");
  EXPECT_EQ(errors[1].pointer, "/rules/0/action/anonymize/options/0");
  EXPECT_EQ(Errors(R"({"rules": [{"id": "a", "match": {"all": []}, "action": {"pipeline": "volume-stats", "anonymize": "yes"}}]})")[0].pointer,
            "/rules/0/action/anonymize");
}

TEST(RuleSet, TagsAreWrittenAsGroupAndElement) {
  EXPECT_EQ(ParseTagText("(0008,0060)"), 0x00080060u);
  EXPECT_EQ(ParseTagText("(0008,006)"), std::nullopt);
  EXPECT_EQ(ParseTagText("(000G,0060)"), std::nullopt);
}

TEST(RuleSet, ASeriesAnnouncesItsCountOnlyWhereItsAttributesAreUnambiguous) {
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "120"}}), 120u) << "ImagesInAcquisition";
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, " 64 "}, {0x00200105, "1"}}), 64u);
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "30"}, {0x00200105, "10"}}), std::nullopt)
      << "several temporal positions: vendors count ImagesInAcquisition differently";
  EXPECT_EQ(AnnouncedInstanceCount({{0x00540081, "71"}, {0x00540101, "3"}}), 213u) << "PET: slices x time slices";
  EXPECT_EQ(AnnouncedInstanceCount({{0x00540081, "71"}}), 71u);
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "1"}, {0x00280008, "160"}}), std::nullopt) << "multi-frame";
  EXPECT_EQ(AnnouncedInstanceCount({{0x00080060, "CT"}}), std::nullopt) << "nothing announced";
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "-3"}}), std::nullopt);
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "2.5"}}), std::nullopt);
  EXPECT_EQ(AnnouncedInstanceCount({{0x00201002, "abc"}}), std::nullopt);
}

TEST(RuleSet, OnlyUnambiguousSeriesLevelRulesStartOnACompleteSeries) {
  const RuleSet rules = Parse(R"({"rules": [
      {"id": "series", "level": "series", "match": {"attribute": "Modality", "equals": "CT"}, "action": {"pipeline": "volume-stats"}},
      {"id": "study", "match": {"attribute": "Modality", "equals": "CT"}, "action": {"pipeline": "volume-stats"}},
      {"id": "off", "enabled": false, "level": "series", "match": {"all": []}, "action": {"pipeline": "volume-stats"}},
      {"id": "last", "fallback": true, "level": "series", "match": {"all": []}, "action": {"pipeline": "volume-stats"}}]})");
  std::vector<std::string> starting;
  for (const auto& rule : rules.rules) {
    if (StartsOnCompleteSeries(rules, rule)) starting.push_back(rule.id);
  }
  EXPECT_EQ(starting, std::vector<std::string>{"series"});
  RuleSet first_match = rules;
  first_match.first_match = true;
  EXPECT_FALSE(StartsOnCompleteSeries(first_match, first_match.rules[0])) << "a later study-level winner is possible";
}

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

TEST(CompareRuleSets, SaysWhichJobsADraftCreatesNoLongerCreatesOrChanges) {
  const auto now = Parse(Set({Rule("ct", R"({"attribute": "Modality", "equals": "CT"})"),
                              Rule("old", R"({"attribute": "Modality", "equals": "CT"})")}));
  const auto draft = Parse(Set({
      R"({"id": "ct", "match": {"attribute": "Modality", "equals": "CT"},
          "action": {"pipeline": "lung-emphysema", "parameters": {"threshold": -950}}})",
      Rule("series", R"({"attribute": "Modality", "equals": "CT"})", R"(, "level": "series")")}));
  const auto compared = CompareRuleSets(now, draft, Study({{0x00080060, "CT"}}));
  EXPECT_EQ(compared["now"]["fired"], nlohmann::json({"ct", "old"}));
  EXPECT_EQ(compared["draft"]["fired"], nlohmann::json({"ct", "series"}));
  ASSERT_EQ(compared["changed"].size(), 1u);
  EXPECT_EQ(compared["changed"][0]["rule"], "ct");
  EXPECT_EQ(compared["changed"][0]["now"]["processor"], "volume-stats");
  EXPECT_EQ(compared["changed"][0]["draft"]["processor"], "lung-emphysema");
  ASSERT_EQ(compared["no_longer_created"].size(), 1u);
  EXPECT_EQ(compared["no_longer_created"][0]["rule"], "old");
  ASSERT_EQ(compared["created"].size(), 1u);
  EXPECT_EQ(compared["created"][0]["rule"], "series");
  EXPECT_EQ(compared["created"][0]["series"], "s1");
  EXPECT_TRUE(compared["now"]["jobs"][0]["series"].is_null()) << "a study job has no series";

  const auto same = CompareRuleSets(now, now, Study({{0x00080060, "CT"}}));
  EXPECT_TRUE(same["created"].empty() && same["no_longer_created"].empty() && same["changed"].empty());
  const auto mr = CompareRuleSets(now, draft, Study({{0x00080060, "MR"}}));
  EXPECT_TRUE(mr["now"]["jobs"].empty() && mr["draft"]["jobs"].empty() && mr["created"].empty());
}

}  // namespace
}  // namespace procnode
