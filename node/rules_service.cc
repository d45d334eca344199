// The node's rules service: the active rule set, validation, saving, history and rollback, and
// draft rule sets tried on a stored study (dry-run) or replayed over recent studies.
#include "node/node.h"

#include <set>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "pipeline/routing_inputs.h"
#include "routing/rules.h"

namespace procnode {

std::shared_ptr<const RuleSet> Node::CurrentRules() {
  const int version = queue_.ActiveRuleSetVersion();
  std::lock_guard lock(rules_mutex_);
  if (rules_ && version == rules_version_) return rules_;
  std::string body = DefaultRuleSetJson();
  if (version > 0) {
    const auto stored = queue_.RuleSetVersion(version);
    if (stored) body = stored->body;
  }
  auto parsed = ParseRuleSet(body, Vocabulary());
  if (!parsed.rule_set) {
    // Validated when saved; can fail only if the configuration changed since (a destination removed).
    Log(LogLevel::kError, "rule set version " + std::to_string(version) + " is no longer valid (" +
                              parsed.errors.front().pointer + ": " + parsed.errors.front().reason + ")" +
                              (rules_ ? "; keeping version " + std::to_string(rules_version_) : "; using the default"));
    if (rules_) return rules_;
    parsed = ParseRuleSet(DefaultRuleSetJson(), Vocabulary());
  }
  parsed.rule_set->version = version;
  rules_ = std::make_shared<const RuleSet>(std::move(*parsed.rule_set));
  if (rules_version_ != -1) Log(LogLevel::kInfo, "routing rule set version " + std::to_string(version) + " is active");
  rules_version_ = version;
  return rules_;
}

namespace {

// "rules" is the rule set as JSON; "body" the same text exactly as its author wrote it (key
// order and layout kept), for editors.
nlohmann::json StoredToJson(const StoredRuleSet& stored, bool with_body) {
  nlohmann::json out{{"version", stored.version}, {"author", stored.author}, {"comment", stored.comment},
                     {"created_at", stored.created_at}};
  if (with_body) {
    out["rules"] = nlohmann::json::parse(stored.body, nullptr, false);
    out["body"] = stored.body;
  }
  return out;
}

}  // namespace

nlohmann::json Node::Rules() {
  if (const auto stored = queue_.ActiveRuleSet()) return StoredToJson(*stored, true);
  return {{"version", 0}, {"author", "procnode"}, {"comment", "built-in default"}, {"created_at", nullptr},
          {"rules", nlohmann::json::parse(DefaultRuleSetJson())}, {"body", DefaultRuleSetJson()}};
}

RuleVocabulary Node::Vocabulary() const {
  const std::set<std::string> destinations(config_.destinations.begin(), config_.destinations.end());
  RuleVocabulary vocabulary = DefaultVocabulary(processors_, destinations);
  for (const auto& [name, destination] : config_.destination_kinds) {
    if (destination.kind == "bids") vocabulary.bids_destinations.insert(name);
  }
  vocabulary.slurm = config_.executor.slurm;
  return vocabulary;
}

nlohmann::json Node::ValidateRules(const std::string& body) {
  const auto parsed = ParseRuleSet(body, Vocabulary());
  return {{"valid", parsed.rule_set.has_value()}, {"errors", ErrorsToJson(parsed.errors)}};
}

nlohmann::json Node::SaveRules(const std::string& body, const std::string& author, const std::string& comment) {
  const auto validation = ValidateRules(body);
  if (!validation["valid"].get<bool>()) {
    audit_.Record({.who = author, .action = "rules.save", .object = "rule set", .outcome = "refused",
                   .detail = std::to_string(validation["errors"].size()) + " validation error(s)"});
    throw Error(ErrorCode::kInvalidInput, nlohmann::json{{"message", "rule set refused: the active one stays"},
                                                         {"errors", validation["errors"]}}.dump());
  }
  const int version = queue_.SaveRuleSet(body, author, comment);
  audit_.Record({.who = author, .action = "rules.save", .object = "rule set version " + std::to_string(version),
                 .outcome = "success", .detail = "comment: " + comment});
  Log(LogLevel::kInfo, "routing rule set version " + std::to_string(version) + " saved by " + author);
  return {{"version", version}, {"valid", true}};
}

nlohmann::json Node::RulesHistory() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& stored : queue_.RuleSetHistory(200)) out.push_back(StoredToJson(stored, false));
  return out;
}

nlohmann::json Node::RulesVersion(int version) {
  const auto stored = queue_.RuleSetVersion(version);
  if (!stored) throw Error(ErrorCode::kNotFound, "rule set version " + std::to_string(version) + " does not exist");
  return StoredToJson(*stored, true);
}

nlohmann::json Node::RollbackRules(int version, const std::string& author) {
  const auto stored = queue_.RuleSetVersion(version);
  if (!stored) throw Error(ErrorCode::kNotFound, "rule set version " + std::to_string(version) + " does not exist");
  return SaveRules(stored->body, author, "rollback to version " + std::to_string(version));
}

RuleSet Node::ParseDraft(const std::string& rules_body) {
  auto parsed = ParseRuleSet(rules_body, Vocabulary());
  if (!parsed.rule_set) {
    throw Error(ErrorCode::kInvalidInput, nlohmann::json{{"message", "rule set is not valid"},
                                                         {"errors", ErrorsToJson(parsed.errors)}}.dump());
  }
  return std::move(*parsed.rule_set);
}

nlohmann::json Node::DryRun(const std::string& study_id, const std::string& rules_body) {
  std::shared_ptr<const RuleSet> rules;
  if (rules_body.empty()) {
    rules = CurrentRules();
  } else {
    rules = std::make_shared<const RuleSet>(ParseDraft(rules_body));
  }
  const StudyAttributes study = StudyForRouting(study_id);
  const auto evaluations = EvaluateRuleSet(*rules, study);
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& job : PlanJobs(*rules, study, evaluations)) {
    jobs.push_back({{"rule", job.rule.id}, {"pipeline", job.rule.spec.processor}, {"spec", JobSpecToJson(job.rule.spec)},
                    {"instances", job.input_instances},
                    {"series", job.series_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.series_id)},
                    {"priority", job.priority}});
  }
  return {{"study", study_id}, {"rule_set_version", rules->version}, {"calling_aet", study.calling_aet},
          {"called_aet", study.called_aet}, {"rules", EvaluationToJson(evaluations)}, {"jobs", jobs}};
}

nlohmann::json Node::Replay(const std::string& rules_body, int last, const std::string& from, const std::string& to) {
  const RuleSet draft = ParseDraft(rules_body);
  const std::shared_ptr<const RuleSet> current = CurrentRules();
  const bool by_date = !from.empty() || !to.empty();

  // The newest studies by Orthanc's own order of arrival (its study list is in insertion order),
  // then by LastUpdate, newest first.
  const auto statistics = nlohmann::json::parse(rest_.Get("/statistics"), nullptr, false);
  const int64_t total = statistics.is_object() ? statistics.value("CountStudies", int64_t{0}) : 0;
  const int64_t window = by_date ? kReplayScanLimit : last;
  const int64_t since = std::max<int64_t>(0, total - window);
  auto listed = nlohmann::json::parse(
      rest_.Get("/studies?expand&since=" + std::to_string(since) + "&limit=" + std::to_string(window)), nullptr, false);
  if (!listed.is_array()) throw Error(ErrorCode::kUnavailable, "Orthanc: /studies did not answer a list");
  std::vector<nlohmann::json> studies(listed.begin(), listed.end());
  std::stable_sort(studies.begin(), studies.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("LastUpdate", "") > b.value("LastUpdate", "");
  });

  nlohmann::json rows = nlohmann::json::array();
  nlohmann::json totals = {{"studies", 0}, {"fire_now", 0}, {"fire_draft", 0}, {"jobs_now", 0}, {"jobs_draft", 0},
                           {"created", 0}, {"no_longer_created", 0}, {"changed", 0}, {"errors", 0}};
  for (const auto& listed_study : studies) {
    if (!by_date && static_cast<int>(rows.size()) >= last) break;
    const std::string received = listed_study.value("LastUpdate", "");
    const std::string day = received.substr(0, 8);
    if (!from.empty() && day < from) continue;
    if (!to.empty() && day > to) continue;
    const std::string id = listed_study.value("ID", "");
    const auto tags = listed_study.value("MainDicomTags", nlohmann::json::object());
    nlohmann::json row = {{"study", id}, {"received", received}, {"study_date", tags.value("StudyDate", "")},
                          {"description", tags.value("StudyDescription", "")}};
    try {
      const StudyAttributes study = StudyForRouting(id);
      if (!study.HasInputSeries()) continue;  // only procnode's results: never routed
      std::set<std::string> modalities;
      for (const auto& series : study.series) {
        const auto modality = series.attributes.find(0x00080060);
        if (!series.produced_by_procnode && modality != series.attributes.end()) modalities.insert(modality->second);
      }
      row["modalities"] = modalities;
      const auto compared = CompareRuleSets(*current, draft, study);
      for (const char* key : {"now", "draft", "created", "no_longer_created", "changed"}) row[key] = compared[key];
      const auto count = [&](const char* total, std::size_t n) { totals[total] = totals[total].get<std::size_t>() + n; };
      count("fire_now", compared["now"]["jobs"].empty() ? 0 : 1);
      count("fire_draft", compared["draft"]["jobs"].empty() ? 0 : 1);
      count("jobs_now", compared["now"]["jobs"].size());
      count("jobs_draft", compared["draft"]["jobs"].size());
      for (const char* key : {"created", "no_longer_created", "changed"}) count(key, compared[key].size());
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) continue;  // deleted meanwhile
      row["error"] = e.what();
      totals["errors"] = totals["errors"].get<int>() + 1;
    }
    totals["studies"] = totals["studies"].get<int>() + 1;
    rows.push_back(std::move(row));
  }
  return {{"rule_set_version", current->version}, {"draft_version", draft.version}, {"totals", totals},
          {"studies", rows}, {"scanned", studies.size()}, {"orthanc_studies", total}};
}

}  // namespace procnode
