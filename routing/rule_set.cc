#include "routing/rule_set.h"

#include "routing/bids_mapping.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/json_limits.h"

namespace procnode {
namespace {

using nlohmann::json;

std::string Escape(const std::string& token) {  // RFC 6901
  std::string out;
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const std::map<std::string, Condition::Op>& Operators() {
  static const std::map<std::string, Condition::Op> kOps{
      {"equals", Condition::Op::kEquals},   {"not-equals", Condition::Op::kNotEquals},
      {"in", Condition::Op::kIn},           {"regex", Condition::Op::kRegex},
      {"contains", Condition::Op::kContains}, {"greater", Condition::Op::kGreater},
      {"less", Condition::Op::kLess},       {"range", Condition::Op::kRange},
      {"exists", Condition::Op::kExists},   {"missing", Condition::Op::kMissing}};
  return kOps;
}

std::string OpName(Condition::Op op) {
  for (const auto& [name, value] : Operators()) {
    if (value == op) return name;
  }
  return "?";
}

std::string ScalarText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<long long>());
  if (value.is_number()) {
    std::ostringstream out;
    out << value.get<double>();
    return out.str();
  }
  return "";
}

// The deepest nesting of groups in `pattern` (escapes and character classes skipped).
int RegexGroupDepth(const std::string& pattern) {
  int depth = 0, deepest = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // "[]...]": ']' first is literal
    } else if (c == '(') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ')' && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Compiles a regex condition's pattern with RE2 (bounded memory, linear-time matching); the
// reason it is refused, or nullopt.
std::optional<std::string> CompileRegex(Condition& c) {
  const std::string& pattern = c.values[0];
  if (pattern.size() > kMaxRegexLength) {
    return "regular expression longer than " + std::to_string(kMaxRegexLength) + " bytes";
  }
  if (RegexGroupDepth(pattern) > kMaxRegexGroupDepth) {
    return "regular expression nests groups more than " + std::to_string(kMaxRegexGroupDepth) + " levels deep";
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(c.case_sensitive);
  options.set_max_mem(1 << 20);
  auto compiled = std::make_shared<const re2::RE2>(pattern, options);
  if (!compiled->ok()) {
    return "not a regular expression RE2 accepts (" + compiled->error() +
           "; backreferences and lookaround are not supported)";
  }
  c.regex = std::move(compiled);
  return std::nullopt;
}

class Parser {
 public:
  explicit Parser(const RuleVocabulary& vocabulary) : vocabulary_(vocabulary) {}

  ParsedRuleSet Parse(const std::string& text) {
    ParsedRuleSet result;
    json root;
    if (JsonNestingDepth(text) > kMaxJsonDepth) {
      errors_.push_back({"", "nested more than " + std::to_string(kMaxJsonDepth) + " levels deep: refused unread"});
      result.errors = errors_;
      return result;
    }
    try {
      root = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
      errors_.push_back({"", std::string("not JSON: ") + e.what()});
      result.errors = errors_;
      return result;
    }
    RuleSet rules;
    if (!root.is_object()) {
      Error("", "a rule set is an object with \"rules\"");
    } else {
      Keys(root, "", {"mode", "rules", "$schema", "description"});
      if (root.contains("mode")) {
        const auto& mode = root["mode"];
        if (!mode.is_string() || (mode != "all" && mode != "first-match")) {
          Error("/mode", "must be \"all\" or \"first-match\"");
        } else {
          rules.first_match = mode == "first-match";
        }
      }
      if (!root.contains("rules") || !root["rules"].is_array()) {
        Error("/rules", "missing: a list of rules");
      } else {
        std::set<std::string> ids;
        for (std::size_t i = 0; i < root["rules"].size(); ++i) {
          const std::string at = "/rules/" + std::to_string(i);
          auto rule = ParseRule(root["rules"][i], at);
          if (!rule) continue;
          if (!ids.insert(rule->id).second) Error(at + "/id", "duplicate rule id \"" + rule->id + "\"");
          rules.rules.push_back(std::move(*rule));
        }
      }
    }
    result.errors = errors_;
    if (errors_.empty()) result.rule_set = std::move(rules);
    return result;
  }

 private:
  void Error(const std::string& pointer, const std::string& reason) { errors_.push_back({pointer, reason}); }

  // Optional typed fields: set `target` when `key` is present and of the right type, else say so.
  void Optional(const json& node, const std::string& at, const char* key, bool& target) {
    if (!node.contains(key)) return;
    if (!node[key].is_boolean()) Error(at + "/" + key, "must be true or false");
    else target = node[key];
  }
  void Optional(const json& node, const std::string& at, const char* key, int& target) {
    if (!node.contains(key)) return;
    if (!node[key].is_number_integer()) Error(at + "/" + key, "must be an integer");
    else target = node[key];
  }
  void Optional(const json& node, const std::string& at, const char* key, std::string& target) {
    if (!node.contains(key)) return;
    if (!node[key].is_string()) Error(at + "/" + key, "must be text");
    else target = node[key];
  }

  void Keys(const json& object, const std::string& at, std::set<std::string> allowed) {
    for (const auto& [key, value] : object.items()) {
      if (!allowed.contains(key)) Error(at + "/" + Escape(key), "unknown key \"" + key + "\"");
    }
  }

  std::optional<RoutingRule> ParseRule(const json& node, const std::string& at) {
    if (!node.is_object()) {
      Error(at, "a rule is an object");
      return std::nullopt;
    }
    Keys(node, at, {"id", "description", "enabled", "priority", "level", "fallback", "match", "action", "wait_for"});
    RoutingRule rule;
    if (!node.contains("id") || !node["id"].is_string() || node["id"].get<std::string>().empty()) {
      Error(at + "/id", "missing: every rule needs a non-empty string id");
    } else {
      rule.id = node["id"];
      const bool safe = std::all_of(rule.id.begin(), rule.id.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
      });
      if (!safe || rule.id.size() > 64) Error(at + "/id", "use at most 64 letters, digits, '-', '_' or '.'");
    }
    Optional(node, at, "description", rule.description);
    Optional(node, at, "enabled", rule.enabled);
    Optional(node, at, "fallback", rule.fallback);
    Optional(node, at, "priority", rule.priority);
    if (node.contains("level")) {
      if (node["level"] != "study" && node["level"] != "series") Error(at + "/level", "must be \"study\" or \"series\"");
      else rule.series_level = node["level"] == "series";
    }
    if (!node.contains("match")) {
      Error(at + "/match", "missing: what the rule matches ({\"all\": []} matches every study)");
    } else {
      rule.match = ParseCondition(node["match"], at + "/match", 1);
    }
    if (node.contains("wait_for")) {
      const json& wait = node["wait_for"];
      if (!wait.is_object() || !wait.contains("series")) {
        Error(at + "/wait_for", "must be {\"series\": condition, \"max_wait_seconds\": N}");
      } else {
        Keys(wait, at + "/wait_for", {"series", "max_wait_seconds"});
        rule.wait_for_series = ParseCondition(wait["series"], at + "/wait_for/series", 1);
        if (wait.contains("max_wait_seconds")) {
          if (!wait["max_wait_seconds"].is_number_integer() || wait["max_wait_seconds"] < 0 ||
              wait["max_wait_seconds"] > 86400) {
            Error(at + "/wait_for/max_wait_seconds", "must be an integer from 0 to 86400");
          } else {
            rule.max_wait_seconds = wait["max_wait_seconds"];
          }
        }
      }
    }
    if (!node.contains("action")) {
      Error(at + "/action", "missing: what the rule does");
    } else {
      rule.action = ParseAction(node["action"], at + "/action");
    }
    return rule;
  }

  Condition ParseCondition(const json& node, const std::string& at, int depth) {
    Condition c;
    c.pointer = at;
    if (depth > kMaxConditionDepth) {
      Error(at, "conditions nest more than " + std::to_string(kMaxConditionDepth) + " levels deep");
      return c;
    }
    if (!node.is_object()) {
      Error(at, "a condition is an object: {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} or {\"attribute\": ...}");
      return c;
    }
    for (const auto& [key, kind] : {std::pair{"all", Condition::Kind::kAll}, std::pair{"any", Condition::Kind::kAny}}) {
      if (!node.contains(key)) continue;
      Keys(node, at, {key});
      c.kind = kind;
      if (!node[key].is_array()) {
        Error(at + "/" + key, "must be a list of conditions");
        return c;
      }
      for (std::size_t i = 0; i < node[key].size(); ++i) {
        c.children.push_back(ParseCondition(node[key][i], at + "/" + key + "/" + std::to_string(i), depth + 1));
      }
      return c;
    }
    if (node.contains("not")) {
      Keys(node, at, {"not"});
      c.kind = Condition::Kind::kNot;
      c.children.push_back(ParseCondition(node["not"], at + "/not", depth + 1));
      return c;
    }
    c.kind = Condition::Kind::kLeaf;
    std::set<std::string> allowed{"attribute", "case_sensitive"};
    for (const auto& [name, op] : Operators()) allowed.insert(name);
    Keys(node, at, allowed);
    if (!node.contains("attribute") || !node["attribute"].is_string()) {
      Error(at + "/attribute", "missing: a DICOM keyword, \"(gggg,eeee)\", \"CallingAET\" or \"CalledAET\"");
      return c;
    }
    c.attribute = node["attribute"];
    if (c.attribute == "CallingAET") {
      c.source = Condition::Source::kCallingAet;
    } else if (c.attribute == "CalledAET") {
      c.source = Condition::Source::kCalledAet;
    } else if (auto tag = ParseTagText(c.attribute)) {
      c.tag = *tag;
    } else if (auto known = vocabulary_.keyword_to_tag ? vocabulary_.keyword_to_tag(c.attribute) : std::nullopt) {
      c.tag = *known;
    } else {
      Error(at + "/attribute", "unknown attribute keyword \"" + c.attribute + "\"");
    }
    Optional(node, at, "case_sensitive", c.case_sensitive);
    int operators = 0;
    for (const auto& [name, op] : Operators()) {
      if (!node.contains(name)) continue;
      ++operators;
      c.op = op;
      ParseOperand(c, node[name], at + "/" + name);
    }
    if (operators != 1) {
      Error(at, operators == 0 ? "no operator: use one of equals, not-equals, in, regex, contains, greater, less, "
                                 "range, exists, missing"
                               : "more than one operator in one condition: combine them with \"all\"");
    }
    return c;
  }

  void ParseOperand(Condition& c, const json& value, const std::string& at) {
    using Op = Condition::Op;
    switch (c.op) {
      case Op::kExists:
      case Op::kMissing:
        if (value != true) Error(at, "write " + OpName(c.op) + ": true");
        return;
      case Op::kIn:
        if (!value.is_array() || value.empty()) {
          Error(at, "must be a non-empty list of values");
          return;
        }
        for (std::size_t i = 0; i < value.size(); ++i) {
          if (!value[i].is_string() && !value[i].is_number()) Error(at + "/" + std::to_string(i), "must be text or a number");
          else c.values.push_back(ScalarText(value[i]));
        }
        return;
      case Op::kRange:
        if (!value.is_array() || value.size() != 2 || ScalarText(value[0]).empty() || ScalarText(value[1]).empty()) {
          Error(at, "must be [low, high] (numbers, or dates as \"YYYYMMDD\")");
          return;
        }
        c.values = {ScalarText(value[0]), ScalarText(value[1])};
        return;
      default:
        if (!value.is_string() && !value.is_number()) {
          Error(at, "must be text or a number");
          return;
        }
        c.values = {ScalarText(value)};
        if (c.op == Op::kRegex) {
          if (auto problem = CompileRegex(c)) Error(at, *problem);
        }
        if ((c.op == Op::kGreater || c.op == Op::kLess) && !value.is_number() && c.values[0].size() != 8) {
          Error(at, "must be a number, or a date as \"YYYYMMDD\"");
        }
    }
  }

  RuleAction ParseAction(const json& node, const std::string& at) {
    RuleAction action;
    if (!node.is_object()) {
      Error(at, "an action is an object with \"pipeline\"");
      return action;
    }
    Keys(node, at, {"pipeline", "parameters", "device", "priority", "anonymize", "destinations", "bids", "executor", "results"});
    if (!node.contains("pipeline") || !node["pipeline"].is_string()) {
      Error(at + "/pipeline", "missing: the pipeline to run");
    } else {
      action.pipeline = node["pipeline"];
      if (const auto version = vocabulary_.pipeline_versions.find(action.pipeline); version != vocabulary_.pipeline_versions.end()) {
        action.pipeline_version = version->second;
      }
      if (!vocabulary_.pipeline_parameters.contains(action.pipeline)) {
        std::string known;
        for (const auto& [name, parameters] : vocabulary_.pipeline_parameters) known += (known.empty() ? "" : ", ") + name;
        Error(at + "/pipeline", "unknown pipeline \"" + action.pipeline + "\" (known: " + known + ")");
      }
    }
    if (node.contains("parameters")) {
      if (!node["parameters"].is_object()) {
        Error(at + "/parameters", "must be an object");
      } else {
        action.parameters = node["parameters"];
        const auto it = vocabulary_.pipeline_parameters.find(action.pipeline);
        for (const auto& [key, value] : action.parameters.items()) {
          if (it != vocabulary_.pipeline_parameters.end() && !it->second.contains(key)) {
            Error(at + "/parameters/" + Escape(key), "unknown parameter \"" + key + "\" for pipeline \"" + action.pipeline + "\"");
          } else if (it != vocabulary_.pipeline_parameters.end() && vocabulary_.check_parameter) {
            const std::string problem = vocabulary_.check_parameter(action.pipeline, key, value);
            if (!problem.empty()) Error(at + "/parameters/" + Escape(key), problem);
          }
        }
      }
    }
    if (node.contains("device")) {
      if (node["device"] != "auto" && node["device"] != "cpu" && node["device"] != "gpu") {
        Error(at + "/device", "must be \"auto\", \"cpu\" or \"gpu\"");
      } else {
        action.device = node["device"];
      }
    }
    Optional(node, at, "priority", action.priority);
    if (node.contains("executor")) {
      if (node["executor"] != "local" && node["executor"] != "slurm") {
        Error(at + "/executor", "must be \"local\" or \"slurm\"");
      } else if (node["executor"] == "slurm" && !vocabulary_.slurm) {
        Error(at + "/executor", "no Slurm executor is configured on this node (ProcNode.Executor)");
      } else {
        action.executor = node["executor"];
      }
    }
    if (node.contains("anonymize")) ParseAnonymize(node["anonymize"], at + "/anonymize", action);
    if (node.contains("destinations")) {
      action.destinations = NameList(
          node["destinations"], at + "/destinations", "must be a list of configured destination names",
          [&](const std::string& name) { return vocabulary_.destinations.contains(name); },
          [](const json& name) { return "unknown destination " + name.dump() + " (configure it in ProcNode.Destinations)"; });
    }
    if (node.contains("results")) {
      action.results = NameList(
          node["results"], at + "/results", "must be a list of result kinds (\"pdf\", \"seg\", \"sr\", \"derived\", ...)",
          [&](const std::string& name) { return vocabulary_.result_names.empty() || vocabulary_.result_names.contains(name); },
          [&](const json& name) {
            std::string known;
            for (const auto& n : vocabulary_.result_names) known += (known.empty() ? "" : ", ") + n;
            return "unknown result kind " + name.dump() + " (known: " + known + ")";
          });
      if (node["results"].is_array() && node["results"].empty()) Error(at + "/results", "must name at least one result kind");
      const auto& r = action.results;
      if (std::find(r.begin(), r.end(), "sr") != r.end() && std::find(r.begin(), r.end(), "seg") == r.end()) {
        Error(at + "/results", "\"sr\" needs \"seg\": the SR's measurements refer to the SEG's segments");
      }
    }
    if (node.contains("bids")) {
      action.bids = node["bids"];
      for (const auto& [pointer, message] : CheckBidsMapping(node["bids"])) Error(at + "/bids" + pointer, message);
    }
    // A research export is pseudonymous and needs to know where each series goes.
    for (std::size_t i = 0; i < action.destinations.size(); ++i) {
      if (!vocabulary_.bids_destinations.contains(action.destinations[i])) continue;
      if (!action.anonymize) {
        Error(at + "/destinations/" + std::to_string(i), "\"" + action.destinations[i] +
                                                             "\" is a BIDS export: only an anonymized route may send to it");
      }
      if (action.bids.is_null()) {
        Error(at + "/bids", "missing: the BIDS destination \"" + action.destinations[i] +
                                "\" needs a mapping of series to datatypes and suffixes");
      }
    }
    return action;
  }

  // "anonymize": true, false or {"project", "options", "results"}.
  void ParseAnonymize(const json& anonymize, const std::string& at, RuleAction& action) {
    if (anonymize.is_boolean()) {
      action.anonymize = anonymize.get<bool>();
      return;
    }
    if (!anonymize.is_object()) {
      Error(at, "must be true, false or {\"project\": ..., \"options\": [...]}");
      return;
    }
    action.anonymize = true;
    Keys(anonymize, at, {"project", "options", "results"});
    if (anonymize.contains("results")) {
      if (anonymize["results"] != "pseudonymous" && anonymize["results"] != "clinical") {
        Error(at + "/results", "must be \"pseudonymous\" (kept and sent as they are) or \"clinical\" (re-identified into the original study)");
      } else {
        action.results_to_clinical = anonymize["results"] == "clinical";
      }
    }
    if (anonymize.contains("project")) {
      if (!anonymize["project"].is_string() || anonymize["project"].get<std::string>().empty()) {
        Error(at + "/project", "must be a non-empty project name");
      } else {
        action.anonymize_project = anonymize["project"];
      }
    }
    if (anonymize.contains("options")) {
      const auto& known = vocabulary_.anonymization_options;
      action.anonymize_options = NameList(
          anonymize["options"], at + "/options", "must be a list of PS3.15 option names",
          [&](const std::string& name) { return known.empty() || known.contains(name); },
          [](const json& option) { return "unknown anonymization option " + option.dump(); });
    }
  }

  // A list of names, each of them `known` (otherwise an error at its pointer, `unknown` saying why).
  template <typename Known, typename Unknown>
  std::vector<std::string> NameList(const json& list, const std::string& at, const std::string& not_a_list, Known&& known,
                                    Unknown&& unknown) {
    std::vector<std::string> names;
    if (!list.is_array()) {
      Error(at, not_a_list);
      return names;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string() || !known(list[i].get<std::string>())) {
        Error(at + "/" + std::to_string(i), unknown(list[i]));
      } else {
        names.push_back(list[i]);
      }
    }
    return names;
  }

  const RuleVocabulary& vocabulary_;
  std::vector<ValidationError> errors_;
};

// ---- Evaluation ----

enum class Truth { kFalse, kTrue, kUnknown };

std::string TruthName(Truth t) { return t == Truth::kTrue ? "true" : t == Truth::kFalse ? "false" : "unknown"; }

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string Trim(const std::string& text) {
  const auto begin = text.find_first_not_of(' ');
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(' ') - begin + 1);
}

std::optional<double> Number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return std::nullopt;
  return value;
}

bool IsDate(const std::string& text) {
  return text.size() == 8 && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

// -1, 0, 1, or nullopt when the two cannot be compared.
std::optional<int> Compare(const std::string& actual, const std::string& expected) {
  if (IsDate(actual) && IsDate(expected)) return actual < expected ? -1 : actual > expected ? 1 : 0;
  const auto a = Number(actual), b = Number(expected);
  if (!a || !b) return std::nullopt;
  return *a < *b ? -1 : *a > *b ? 1 : 0;
}

std::string Describe(const Condition& c) {
  std::string text = c.attribute + " " + OpName(c.op);
  if (c.op == Condition::Op::kRange) return text + " [" + c.values[0] + ", " + c.values[1] + "]";
  if (c.op == Condition::Op::kExists || c.op == Condition::Op::kMissing) return text;
  if (c.op == Condition::Op::kIn) {
    std::string list;
    for (const auto& v : c.values) list += (list.empty() ? "" : ", ") + json(v).dump();
    return text + " [" + list + "]";
  }
  return text + " " + json(c.values.empty() ? "" : c.values[0]).dump() + (c.case_sensitive ? "" : " (any case)");
}

class Evaluator {
 public:
  Evaluator(const AttributeMap& attributes, const StudyAttributes& study, std::vector<ConditionTrace>* trace)
      : attributes_(attributes), study_(study), trace_(trace) {}

  Truth Evaluate(const Condition& c) {
    switch (c.kind) {
      case Condition::Kind::kAll: {
        Truth result = Truth::kTrue;
        for (const auto& child : c.children) {
          const Truth t = Evaluate(child);
          if (t == Truth::kFalse) result = Truth::kFalse;
          else if (t == Truth::kUnknown && result == Truth::kTrue) result = Truth::kUnknown;
        }
        return result;
      }
      case Condition::Kind::kAny: {
        Truth result = c.children.empty() ? Truth::kFalse : Truth::kFalse;
        bool unknown = false;
        for (const auto& child : c.children) {
          const Truth t = Evaluate(child);
          if (t == Truth::kTrue) result = Truth::kTrue;
          unknown = unknown || t == Truth::kUnknown;
        }
        return result == Truth::kTrue ? result : unknown ? Truth::kUnknown : Truth::kFalse;
      }
      case Condition::Kind::kNot: {
        const Truth t = Evaluate(c.children.at(0));
        return t == Truth::kUnknown ? t : t == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
      }
      case Condition::Kind::kLeaf:
        return Leaf(c);
    }
    return Truth::kUnknown;
  }

 private:
  std::optional<std::string> Value(const Condition& c) const {
    switch (c.source) {
      case Condition::Source::kCallingAet:
        return study_.calling_aet.empty() ? std::nullopt : std::optional<std::string>(study_.calling_aet);
      case Condition::Source::kCalledAet:
        return study_.called_aet.empty() ? std::nullopt : std::optional<std::string>(study_.called_aet);
      case Condition::Source::kTag: {
        const auto it = attributes_.find(c.tag);
        if (it == attributes_.end()) return std::nullopt;
        return it->second;
      }
    }
    return std::nullopt;
  }

  Truth Leaf(const Condition& c) {
    using Op = Condition::Op;
    const auto raw = Value(c);
    Truth t = Truth::kUnknown;
    if (c.op == Op::kMissing) {
      t = raw ? Truth::kFalse : Truth::kTrue;
    } else if (c.op == Op::kExists) {
      t = raw ? Truth::kTrue : Truth::kFalse;
    } else if (raw) {
      const std::string actual = c.case_sensitive ? Trim(*raw) : Lower(Trim(*raw));
      auto fold = [&](const std::string& v) { return c.case_sensitive ? v : Lower(v); };
      auto yes = [](bool b) { return b ? Truth::kTrue : Truth::kFalse; };
      switch (c.op) {
        case Op::kEquals: t = yes(actual == fold(c.values[0])); break;
        case Op::kNotEquals: t = yes(actual != fold(c.values[0])); break;
        case Op::kIn:
          t = yes(std::any_of(c.values.begin(), c.values.end(), [&](const std::string& v) { return actual == fold(v); }));
          break;
        case Op::kContains: t = yes(actual.find(fold(c.values[0])) != std::string::npos); break;
        case Op::kRegex: t = yes(c.regex && re2::RE2::FullMatch(Trim(*raw), *c.regex)); break;
        case Op::kGreater:
        case Op::kLess:
        case Op::kRange: {
          const auto low = Compare(Trim(*raw), c.values[0]);
          const auto high = c.op == Op::kRange ? Compare(Trim(*raw), c.values[1]) : low;
          if (!low || !high) break;  // not comparable: unknown
          t = c.op == Op::kGreater ? yes(*low > 0) : c.op == Op::kLess ? yes(*low < 0) : yes(*low >= 0 && *high <= 0);
          break;
        }
        default: break;
      }
    }
    if (trace_ != nullptr) trace_->push_back({c.pointer, Describe(c), raw ? json(*raw).dump() : "(missing)", TruthName(t)});
    return t;
  }

  const AttributeMap& attributes_;
  const StudyAttributes& study_;
  std::vector<ConditionTrace>* trace_;
};

std::optional<ConditionTrace> FirstFailure(const std::vector<ConditionTrace>& trace) {
  for (const auto& step : trace) {
    if (step.outcome != "true") return step;
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint32_t> ParseTagText(const std::string& text) {
  if (text.size() != 11 || text[0] != '(' || text[5] != ',' || text[10] != ')') return std::nullopt;
  const std::string group = text.substr(1, 4), element = text.substr(6, 4);
  auto hex = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
  };
  if (!hex(group) || !hex(element)) return std::nullopt;
  return static_cast<uint32_t>(std::stoul(group, nullptr, 16) << 16 | std::stoul(element, nullptr, 16));
}

ParsedRuleSet ParseRuleSet(const std::string& json_text, const RuleVocabulary& vocabulary) {
  return Parser(vocabulary).Parse(json_text);
}

std::vector<std::string> IncompleteSeries(const StudyAttributes& study) {
  std::vector<std::string> incomplete;
  for (const auto& series : study.series) {
    if (series.produced_by_procnode) continue;
    auto number = [&](uint32_t tag) -> std::optional<double> {
      const auto it = series.attributes.find(tag);
      if (it == series.attributes.end()) return std::nullopt;
      return Number(Trim(it->second));
    };
    const double have = static_cast<double>(series.instance_ids.size());
    const auto images = number(0x00201002);             // ImagesInAcquisition
    const auto temporal = number(0x00200105);           // NumberOfTemporalPositions
    const auto slices = number(0x00540081);             // NumberOfSlices (NM, PET)
    const double positions = temporal && *temporal > 1 ? *temporal : 1;
    bool short_of = false;
    if (images) short_of = *images > have;
    // PET/NM: every temporal position holds NumberOfSlices images.
    if (!short_of && slices && !series.attributes.contains(0x00280008)) short_of = *slices * positions > have;
    // Single-frame 4D series: each temporal position has the same number of slices, so a count
    // that is not a multiple of the positions is missing some.
    if (!short_of && positions > 1 && have > 1 && !series.attributes.contains(0x00280008)) {
      short_of = std::fmod(have, positions) != 0 || have < positions;
    }
    if (short_of) incomplete.push_back(series.id);
  }
  return incomplete;
}

std::optional<std::size_t> AnnouncedInstanceCount(const AttributeMap& attributes) {
  auto number = [&](uint32_t tag) -> double {
    const auto it = attributes.find(tag);
    if (it == attributes.end()) return 0;
    const auto value = Number(Trim(it->second));
    return value && *value > 0 && *value < 1e7 && std::floor(*value) == *value ? *value : 0;
  };
  if (number(0x00280008) > 1) return std::nullopt;  // NumberOfFrames: multi-frame
  const double temporal = std::max(number(0x00200105), number(0x00540101));  // positions, time slices
  const double images = number(0x00201002);
  if (images > 0) {
    if (temporal > 1) return std::nullopt;
    return static_cast<std::size_t>(images);
  }
  if (const double slices = number(0x00540081); slices > 0) {
    return static_cast<std::size_t>(slices * std::max(1.0, temporal));
  }
  return std::nullopt;
}

bool StartsOnCompleteSeries(const RuleSet& rules, const RoutingRule& rule) {
  return !rules.first_match && rule.enabled && rule.series_level && !rule.fallback && !rule.wait_for_series;
}

std::vector<RuleEvaluation> EvaluateRuleSet(const RuleSet& rules, const StudyAttributes& study, double waited_seconds) {
  std::vector<std::size_t> order(rules.rules.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return rules.rules[a].priority > rules.rules[b].priority; });
  std::vector<RuleEvaluation> evaluations;
  bool any_fired = false;
  auto evaluate = [&](const RoutingRule& rule) {
    RuleEvaluation e;
    e.rule_id = rule.id;
    e.enabled = rule.enabled;
    if (!rule.enabled) {
      e.why = "disabled";
      return e;
    }
    if (rules.first_match && any_fired) {
      e.why = "not tried: an earlier rule matched (first-match)";
      return e;
    }
    if (rule.wait_for_series && waited_seconds < rule.max_wait_seconds) {
      bool arrived = false;
      for (const auto& series : study.series) {
        if (series.produced_by_procnode) continue;
        AttributeMap merged = series.attributes;
        merged.insert(study.attributes.begin(), study.attributes.end());
        arrived = arrived || Evaluator(merged, study, nullptr).Evaluate(*rule.wait_for_series) == Truth::kTrue;
      }
      if (!arrived) {
        e.waiting = true;
        e.max_wait_seconds = rule.max_wait_seconds;
        e.why = "waiting for a series matching " + rule.wait_for_series->pointer + " (at most " +
                std::to_string(rule.max_wait_seconds) + " s)";
        return e;
      }
    }
    if (!rule.series_level) {
      const Truth t = Evaluator(study.attributes, study, &e.trace).Evaluate(rule.match);
      e.fired = t == Truth::kTrue;
      e.why = e.fired ? "matched" : t == Truth::kUnknown ? "not matched: an attribute it tests is missing" : "not matched";
    } else {
      for (const auto& series : study.series) {
        if (series.produced_by_procnode) continue;
        AttributeMap merged = series.attributes;
        merged.insert(study.attributes.begin(), study.attributes.end());  // series values win
        std::vector<ConditionTrace> trace;
        const Truth t = Evaluator(merged, study, &trace).Evaluate(rule.match);
        if (e.trace.empty() || t == Truth::kTrue) {
          if (e.series_ids.empty()) e.trace = trace;
        }
        if (t == Truth::kTrue) e.series_ids.push_back(series.id);
      }
      e.fired = !e.series_ids.empty();
      e.why = e.fired ? "matched " + std::to_string(e.series_ids.size()) + " series" : "no series matched";
    }
    if (!e.fired) e.first_failure = FirstFailure(e.trace);
    any_fired = any_fired || e.fired;
    return e;
  };
  for (std::size_t index : order) {
    if (!rules.rules[index].fallback) evaluations.push_back(evaluate(rules.rules[index]));
  }
  for (std::size_t index : order) {
    const RoutingRule& rule = rules.rules[index];
    if (!rule.fallback) continue;
    if (any_fired && !evaluations.empty()) {
      RuleEvaluation e;
      e.rule_id = rule.id;
      e.enabled = rule.enabled;
      e.why = "fallback not needed: another rule matched";
      evaluations.push_back(e);
    } else {
      evaluations.push_back(evaluate(rule));
    }
  }
  return evaluations;
}

namespace {

// The job's parameters: the rule's, plus "device" when the rule asks for one, "destinations" when
// it names some and "anonymize" on an anonymized route (all read by the worker, not the processor).
JobSpec SpecOf(const RuleAction& action, const std::string& rule_id) {
  JobSpec spec{.processor = action.pipeline, .processor_version = action.pipeline_version,
               .parameters = action.parameters, .device = action.device.empty() ? "auto" : action.device,
               .destinations = action.destinations, .bids = action.bids, .executor = action.executor,
               .results = action.results};
  if (action.anonymize) {
    spec.anonymize = AnonymizationSpec{
        .project = action.anonymize_project.empty() ? "rule:" + rule_id : action.anonymize_project,
        .options = action.anonymize_options,
        .results_to_clinical = action.results_to_clinical};
  }
  return spec;  // requirements are estimated at enqueue (pipeline/routing_inputs.h EstimateRequirements)
}

}  // namespace

std::vector<PlannedJob> PlanJobs(const RuleSet& rules, const StudyAttributes& study,
                                 const std::vector<RuleEvaluation>& evaluations) {
  std::vector<PlannedJob> jobs;
  for (const auto& e : evaluations) {
    if (!e.fired) continue;
    const auto it = std::find_if(rules.rules.begin(), rules.rules.end(), [&](const auto& r) { return r.id == e.rule_id; });
    if (it == rules.rules.end()) continue;
    const Rule spec{.id = it->id, .version = rules.version, .spec = SpecOf(it->action, it->id)};
    auto instances_of = [&](const SeriesAttributes& s) { return s.instance_ids; };
    if (!it->series_level) {
      std::vector<std::string> inputs;
      for (const auto& s : study.series) {
        if (s.produced_by_procnode) continue;
        const auto ids = instances_of(s);
        inputs.insert(inputs.end(), ids.begin(), ids.end());
      }
      if (inputs.empty()) continue;
      jobs.push_back({spec, IdempotencyKey(study.id, inputs, spec), inputs.size(), it->action.priority, ""});
    } else {
      for (const auto& id : e.series_ids) {
        const auto s = std::find_if(study.series.begin(), study.series.end(), [&](const auto& x) { return x.id == id; });
        if (s == study.series.end()) continue;
        jobs.push_back({spec, IdempotencyKey(study.id + "/" + id, s->instance_ids, spec), s->instance_ids.size(),
                        it->action.priority, id});
      }
    }
  }
  return jobs;
}

namespace {

// The jobs a rule set plans for a study, keyed by rule and series.
std::map<std::string, nlohmann::json> PlannedByKey(const RuleSet& rules, const StudyAttributes& study,
                                                   const std::vector<RuleEvaluation>& evaluations) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& job : PlanJobs(rules, study, evaluations)) {
    out[job.rule.id + "\n" + job.series_id] = {
        {"rule", job.rule.id}, {"pipeline", job.rule.spec.processor}, {"spec", JobSpecToJson(job.rule.spec)},
        {"series", job.series_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.series_id)}};
  }
  return out;
}

nlohmann::json FiredRules(const std::vector<RuleEvaluation>& evaluations) {
  nlohmann::json fired = nlohmann::json::array();
  for (const auto& e : evaluations) {
    if (e.fired) fired.push_back(e.rule_id);
  }
  return fired;
}

}  // namespace

nlohmann::json CompareRuleSets(const RuleSet& now, const RuleSet& draft, const StudyAttributes& study) {
  const auto now_evaluated = EvaluateRuleSet(now, study);
  const auto draft_evaluated = EvaluateRuleSet(draft, study);
  const auto now_jobs = PlannedByKey(now, study, now_evaluated);
  const auto draft_jobs = PlannedByKey(draft, study, draft_evaluated);
  nlohmann::json created = nlohmann::json::array(), removed = nlohmann::json::array(),
                 changed = nlohmann::json::array(), now_list = nlohmann::json::array(),
                 draft_list = nlohmann::json::array();
  for (const auto& [key, job] : now_jobs) {
    now_list.push_back(job);
    const auto found = draft_jobs.find(key);
    if (found == draft_jobs.end()) {
      removed.push_back(job);
    } else if (found->second["spec"] != job["spec"]) {
      changed.push_back({{"rule", job["rule"]}, {"series", job["series"]}, {"now", job["spec"]},
                         {"draft", found->second["spec"]}});
    }
  }
  for (const auto& [key, job] : draft_jobs) {
    draft_list.push_back(job);
    if (!now_jobs.contains(key)) created.push_back(job);
  }
  return {{"now", {{"fired", FiredRules(now_evaluated)}, {"jobs", now_list}}},
          {"draft", {{"fired", FiredRules(draft_evaluated)}, {"jobs", draft_list}, {"rules", EvaluationToJson(draft_evaluated)}}},
          {"created", created}, {"no_longer_created", removed}, {"changed", changed}};
}

nlohmann::json EvaluationToJson(const std::vector<RuleEvaluation>& evaluations) {
  json out = json::array();
  for (const auto& e : evaluations) {
    json conditions = json::array();
    for (const auto& t : e.trace) {
      conditions.push_back({{"pointer", t.pointer}, {"condition", t.text}, {"actual", t.actual}, {"result", t.outcome}});
    }
    json item{{"rule", e.rule_id}, {"enabled", e.enabled}, {"fires", e.fired}, {"waiting", e.waiting},
              {"why", e.why}, {"conditions", conditions}};
    if (!e.series_ids.empty()) item["series"] = e.series_ids;
    if (e.first_failure) {
      item["first_failed_condition"] = {{"pointer", e.first_failure->pointer}, {"condition", e.first_failure->text},
                                        {"actual", e.first_failure->actual}, {"result", e.first_failure->outcome}};
    }
    out.push_back(item);
  }
  return out;
}

nlohmann::json ErrorsToJson(const std::vector<ValidationError>& errors) {
  json out = json::array();
  for (const auto& e : errors) out.push_back({{"pointer", e.pointer}, {"reason", e.reason}});
  return out;
}

}  // namespace procnode
