// Where the series of a study go in a BIDS dataset (a rule's "bids" list, for its BIDS
// destinations): each entry matches a series attribute against a pattern and names the BIDS
// datatype, suffix and entities of the file, e.g.
//   {"match": {"SeriesDescription": "*mprage*"}, "datatype": "anat", "suffix": "T1w"}
//   {"match": {"ProtocolName": "*rest*"}, "datatype": "func", "suffix": "bold", "entities": {"task": "rest"}}
// The first entry that matches places the series; a series no entry matches is skipped and listed.
// Patterns are shell globs (fnmatch), case-insensitive. Pure; SDK-free.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace procnode {

struct BidsSeriesRule {
  std::string attribute;  // SeriesDescription, ProtocolName, SequenceName, ImageType or Modality
  std::string pattern;
  std::string datatype;   // anat, func, dwi, fmap, perf
  std::string suffix;     // T1w, bold, dwi, epi, ...
  std::vector<std::pair<std::string, std::string>> entities;  // in BIDS order: task, acq, ce, rec, dir, run
};

// The attributes a rule may match on.
inline constexpr const char* kBidsMatchAttributes[] = {"SeriesDescription", "ProtocolName", "SequenceName", "ImageType",
                                                       "Modality"};

// Problems of a mapping as (JSON pointer below the mapping, message); empty when it is valid.
std::vector<std::pair<std::string, std::string>> CheckBidsMapping(const nlohmann::json& mapping);

// The mapping, checked: Error(kInvalidInput) naming the first problem.
std::vector<BidsSeriesRule> ParseBidsMapping(const nlohmann::json& mapping);

// Whether `value` matches `pattern` (fnmatch, case-insensitive).
bool BidsPatternMatches(const std::string& pattern, const std::string& value);

}  // namespace procnode
