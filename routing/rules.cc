#include "routing/rules.h"

#include <algorithm>

#include "core/digest.h"

namespace procnode {

std::vector<std::string> InputInstances(const std::vector<SeriesRef>& series) {
  std::vector<std::string> ids;
  for (const auto& s : series) {
    if (s.produced_by_procnode) continue;
    ids.insert(ids.end(), s.instance_ids.begin(), s.instance_ids.end());
  }
  return ids;
}

std::string IdempotencyKey(const std::string& study_id, std::vector<std::string> input_instances,
                           const Rule& rule) {
  std::sort(input_instances.begin(), input_instances.end());
  input_instances.erase(std::unique(input_instances.begin(), input_instances.end()),
                        input_instances.end());
  std::string material = "study=" + study_id + "\n";
  for (const auto& id : input_instances) material += "instance=" + id + "\n";
  material += "rule=" + rule.id + "@" + std::to_string(rule.version) + "\n";
  material += "pipeline=" + rule.spec.processor + "@" + rule.spec.processor_version + "\n";
  material += "parameters=" + KeyParametersJson(rule.spec) + "\n";
  return Sha256Hex(material);
}

}  // namespace procnode
