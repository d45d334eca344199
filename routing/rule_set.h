// The admin-edited routing rule set: its JSON language (schemas/rules.schema.json), validation
// with exact locations, and evaluation with per-condition explanations. Pure; thread-safe.
//
// A rule set: {"mode": "all" | "first-match", "rules": [rule, ...]}. A rule:
//   {"id", "description", "enabled", "priority", "level": "study" | "series", "fallback",
//    "match": condition, "action": {"pipeline", "parameters", "device", "priority",
//                                   "anonymize", "destinations"}}
// A condition combines others with {"all": [...]}, {"any": [...]}, {"not": {...}}, or tests one
// attribute: {"attribute": "Modality" | "(0008,0060)" | "CallingAET" | "CalledAET", OP: VALUE,
// "case_sensitive": bool}, OP one of equals, not-equals, in, regex (full match, RE2 syntax), contains,
// greater, less, range ([low, high], inclusive), exists, missing. Numbers compare as numbers,
// DICOM dates (YYYYMMDD) as dates.
//
// Semantics: rules are tried by priority (high first), then file order; in "all" mode every rule
// that matches fires, in "first-match" mode only the first; "fallback" rules fire only when no
// other rule did. A "series" rule is evaluated per series (series attributes over the study's) and
// fires for the series that match. Evaluation is three-valued: a condition on an attribute the
// study does not have is "unknown", never true, whatever "not" or "any" surrounds it; a rule fires
// only when its match is true.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "routing/rules.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace procnode {

// Limits of the rule language (schemas/rules.schema.json says the same): conditions nest at most
// kMaxConditionDepth levels (all/any/not included), and a regex is at most kMaxRegexLength bytes
// with at most kMaxRegexGroupDepth nested groups. Regexes are RE2 syntax (linear-time matching, no
// backreferences or lookaround): what RE2 cannot compile is refused with its JSON pointer.
inline constexpr int kMaxConditionDepth = 16;
inline constexpr std::size_t kMaxRegexLength = 512;
inline constexpr int kMaxRegexGroupDepth = 16;

// Attribute values by tag (group << 16 | element), as text; multiple values joined by '\'.
using AttributeMap = std::map<uint32_t, std::string>;

struct SeriesAttributes {
  std::string id;
  AttributeMap attributes;
  std::vector<std::string> instance_ids;
  bool produced_by_procnode = false;
};

struct StudyAttributes {
  std::string id;
  AttributeMap attributes;  // study-level (from one instance of the study)
  std::vector<SeriesAttributes> series;
  std::string calling_aet, called_aet;

  // Whether any series came from outside procnode: a study holding only procnode's results is
  // never routed (nor replayed).
  bool HasInputSeries() const {
    for (const auto& s : series) {
      if (!s.produced_by_procnode) return true;
    }
    return false;
  }
};

struct Condition {
  enum class Kind { kAll, kAny, kNot, kLeaf };
  enum class Source { kTag, kCallingAet, kCalledAet };
  enum class Op { kEquals, kNotEquals, kIn, kRegex, kContains, kGreater, kLess, kRange, kExists, kMissing };
  Kind kind = Kind::kAll;
  std::vector<Condition> children;
  std::string pointer;  // JSON pointer of this condition in the rule set
  // Leaves:
  std::string attribute;  // as written
  Source source = Source::kTag;
  uint32_t tag = 0;
  Op op = Op::kEquals;
  std::vector<std::string> values;
  bool case_sensitive = true;
  std::shared_ptr<const re2::RE2> regex;  // compiled once; shared by copies of the rule set
};

struct RuleAction {
  std::string pipeline;
  std::string pipeline_version = "1";  // the pipeline's version when the rules were read (vocabulary)
  nlohmann::json parameters = nlohmann::json::object();
  std::string device = "auto";
  int priority = 0;
  bool anonymize = false;
  std::string anonymize_project;               // empty: "rule:<id>"
  std::vector<std::string> anonymize_options;  // PS3.15 options by name (anonymizer/deidentify.h)
  bool results_to_clinical = false;            // "results": "clinical": back to the original study, re-identified
  std::vector<std::string> destinations;
  nlohmann::json bids = nullptr;  // "bids": where series go in the BIDS destinations (routing/bids_mapping.h)
  std::string executor;           // "local", "slurm"; "" : the node's default
  std::vector<std::string> results;  // "results": the result kinds to write; empty: the processor's defaults
};

struct RoutingRule {
  std::string id, description;
  bool enabled = true;
  int priority = 0;
  bool series_level = false;
  bool fallback = false;
  Condition match;
  RuleAction action;
  // "wait_for": {"series": condition, "max_wait_seconds": N}: the rule waits until a series
  // matching the condition has arrived, at most N seconds after the study was first complete.
  std::optional<Condition> wait_for_series;
  int max_wait_seconds = 600;
};

struct RuleSet {
  int version = 0;  // set by storage; recorded on every job
  bool first_match = false;
  std::vector<RoutingRule> rules;
};

struct ValidationError {
  std::string pointer;
  std::string reason;
};

// What validation checks names against.
struct RuleVocabulary {
  std::function<std::optional<uint32_t>(const std::string&)> keyword_to_tag;  // DICOM dictionary
  std::map<std::string, std::set<std::string>> pipeline_parameters;          // pipeline -> parameters
  // pipeline -> version (processors' ProcessorInfo::version): part of every job's idempotency key,
  // so a study sent again after an upgrade that changes results is processed again. "1" when absent.
  std::map<std::string, std::string> pipeline_versions;
  std::set<std::string> destinations;                                         // configured
  std::set<std::string> bids_destinations;  // those of kind "bids": only on anonymized routes, with a "bids" mapping
  bool slurm = false;  // ProcNode.Executor is configured: a rule may send its jobs to Slurm
  std::set<std::string> result_names;  // what "results" may list ("pdf", "seg", ...); empty: any
  // Anonymization option names a rule may use; empty: any.
  std::set<std::string> anonymization_options;
  // A parameter value's problem ("" when fine), e.g. out of range; optional.
  std::function<std::string(const std::string& pipeline, const std::string& parameter, const nlohmann::json& value)>
      check_parameter;
};

struct ParsedRuleSet {
  std::optional<RuleSet> rule_set;  // set when there are no errors
  std::vector<ValidationError> errors;
};

ParsedRuleSet ParseRuleSet(const std::string& json_text, const RuleVocabulary& vocabulary);

// One condition's outcome, for explanations.
struct ConditionTrace {
  std::string pointer;
  std::string text;     // "Modality equals \"CT\""
  std::string actual;   // the study's value, or "(missing)"
  std::string outcome;  // "true", "false" or "unknown"
};

struct RuleEvaluation {
  std::string rule_id;
  bool enabled = true;
  bool fired = false;
  bool waiting = false;                  // its wait_for series has not arrived (and it would match)
  int max_wait_seconds = 0;
  std::string why;                       // "matched", "no match", "disabled", "first-match: ...", ...
  std::vector<std::string> series_ids;   // series-level rules: the series it fired for
  std::vector<ConditionTrace> trace;     // every leaf, in order (first series for series rules)
  std::optional<ConditionTrace> first_failure;
};

// `waited_seconds`: how long the study has been waiting for rules' wait_for series; a rule whose
// series has not arrived is "waiting" (does not fire) until its max_wait_seconds, then evaluated
// as if it had no wait_for.
std::vector<RuleEvaluation> EvaluateRuleSet(const RuleSet& rules, const StudyAttributes& study,
                                            double waited_seconds = 0);

// Series that say they are incomplete: fewer instances than their ImagesInAcquisition (0020,1002),
// than NumberOfSlices (0054,0081) x NumberOfTemporalPositions (0020,0105) for PET/NM, or (single-
// frame 4D series) a count that is not a multiple of NumberOfTemporalPositions. Multi-frame
// instances (NumberOfFrames present) carry their frames whole and are judged by
// ImagesInAcquisition only.
std::vector<std::string> IncompleteSeries(const StudyAttributes& study);

// How many instances a series announces, from one of its (single-frame) instances, where its
// attributes say so without ambiguity: ImagesInAcquisition (0020,1002) with one temporal position,
// or PET's NumberOfSlices (0054,0081) x its temporal positions (NumberOfTemporalPositions or
// NumberOfTimeSlices (0054,0101)). nullopt otherwise: multi-frame instances, several temporal
// positions with ImagesInAcquisition (vendors count them differently), nothing announced.
std::optional<std::size_t> AnnouncedInstanceCount(const AttributeMap& attributes);

// Whether a rule may start a job on one series before the study is stable (the series being
// complete by its own count): an enabled series-level rule, not a fallback, not waiting for another
// series, in an "all" rule set (in first-match mode a study-level rule seen only later could win).
bool StartsOnCompleteSeries(const RuleSet& rules, const RoutingRule& rule);

// The jobs of the rules that fired: study rules take every input series, series rules theirs.
std::vector<PlannedJob> PlanJobs(const RuleSet& rules, const StudyAttributes& study,
                                 const std::vector<RuleEvaluation>& evaluations);

// The saved rule set and a draft side by side on one study (the replay of a draft): {"now":
// {"fired": [rule ids], "jobs": [...]}, "draft": {"fired", "jobs", "rules": evaluation},
// "created": jobs only the draft plans, "no_longer_created": jobs only the saved set plans,
// "changed": [{"rule", "series", "now": spec, "draft": spec}] for the same rule and series with
// another job specification}. A job is {"rule", "pipeline", "spec", "series" (null for a study job)}.
nlohmann::json CompareRuleSets(const RuleSet& now, const RuleSet& draft, const StudyAttributes& study);

nlohmann::json EvaluationToJson(const std::vector<RuleEvaluation>& evaluations);
nlohmann::json ErrorsToJson(const std::vector<ValidationError>& errors);

// The tag of "(gggg,eeee)" text, or nullopt.
std::optional<uint32_t> ParseTagText(const std::string& text);

}  // namespace procnode
