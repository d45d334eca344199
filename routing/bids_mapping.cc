#include "routing/bids_mapping.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"

namespace procnode {
namespace {

const std::set<std::string> kDatatypes = {"anat", "func", "dwi", "fmap", "perf"};
const char* const kEntityOrder[] = {"task", "acq", "ce", "rec", "dir", "run"};

bool Alphanumeric(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
}

}  // namespace

std::vector<std::pair<std::string, std::string>> CheckBidsMapping(const nlohmann::json& mapping) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (!mapping.is_array() || mapping.empty()) {
    problems.emplace_back("", "must be a non-empty list of {\"match\", \"datatype\", \"suffix\", \"entities\"}");
    return problems;
  }
  for (std::size_t i = 0; i < mapping.size(); ++i) {
    const auto& entry = mapping[i];
    const std::string at = "/" + std::to_string(i);
    if (!entry.is_object()) {
      problems.emplace_back(at, "must be an object");
      continue;
    }
    for (const auto& [key, value] : entry.items()) {
      if (key != "match" && key != "datatype" && key != "suffix" && key != "entities") {
        problems.emplace_back(at + "/" + key, "unknown key (match, datatype, suffix, entities)");
      }
    }
    const auto& match = entry.contains("match") ? entry["match"] : nlohmann::json();
    if (!match.is_object() || match.size() != 1 || !match.begin().value().is_string()) {
      problems.emplace_back(at + "/match", "must be {\"ATTRIBUTE\": \"pattern\"}, one attribute");
    } else if (std::none_of(std::begin(kBidsMatchAttributes), std::end(kBidsMatchAttributes),
                            [&](const char* a) { return match.begin().key() == a; })) {
      problems.emplace_back(at + "/match/" + match.begin().key(),
                            "not an attribute a mapping matches (SeriesDescription, ProtocolName, SequenceName, "
                            "ImageType, Modality)");
    }
    if (!entry.contains("datatype") || !entry["datatype"].is_string() || !kDatatypes.contains(entry["datatype"])) {
      problems.emplace_back(at + "/datatype", "must be one of anat, func, dwi, fmap, perf");
    }
    if (!entry.contains("suffix") || !entry["suffix"].is_string() || !Alphanumeric(entry["suffix"])) {
      problems.emplace_back(at + "/suffix", "must be a BIDS suffix (letters and digits), e.g. T1w, bold, dwi, epi");
    }
    bool task = false;
    if (entry.contains("entities")) {
      const auto& entities = entry["entities"];
      if (!entities.is_object()) {
        problems.emplace_back(at + "/entities", "must be an object such as {\"task\": \"rest\"}");
      } else {
        for (const auto& item : entities.items()) {
          const std::string& key = item.key();
          const auto& value = item.value();
          if (std::none_of(std::begin(kEntityOrder), std::end(kEntityOrder), [&](const char* e) { return key == e; })) {
            problems.emplace_back(at + "/entities/" + key, "not an entity a mapping sets (task, acq, ce, rec, dir, run)");
          } else if (!value.is_string() || !Alphanumeric(value)) {
            problems.emplace_back(at + "/entities/" + key, "must be a label of letters and digits");
          }
          task = task || key == "task";
        }
      }
    }
    if (entry.value("datatype", "") == "func" && !task) {
      problems.emplace_back(at + "/entities", "a func series needs a task entity, e.g. {\"task\": \"rest\"}");
    }
  }
  return problems;
}

std::vector<BidsSeriesRule> ParseBidsMapping(const nlohmann::json& mapping) {
  const auto problems = CheckBidsMapping(mapping);
  if (!problems.empty()) {
    throw Error(ErrorCode::kInvalidInput, "BIDS mapping" + problems.front().first + ": " + problems.front().second);
  }
  std::vector<BidsSeriesRule> rules;
  for (const auto& entry : mapping) {
    BidsSeriesRule rule;
    rule.attribute = entry["match"].begin().key();
    rule.pattern = entry["match"].begin().value();
    rule.datatype = entry["datatype"];
    rule.suffix = entry["suffix"];
    if (entry.contains("entities")) {
      for (const char* name : kEntityOrder) {
        if (entry["entities"].contains(name)) rule.entities.emplace_back(name, entry["entities"][name].get<std::string>());
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

bool BidsPatternMatches(const std::string& pattern, const std::string& value) {
  return fnmatch(pattern.c_str(), value.c_str(), FNM_CASEFOLD) == 0;
}

}  // namespace procnode
