#include "routing/rules.h"

#include <algorithm>

#include "core/digest.h"

namespace procnode {

std::vector<Rule> DefaultRuleSet() {
  return {Rule{.id = "default", .version = 1, .pipeline = "volume-stats",
               .pipeline_version = "1", .parameters_json = "{}"}};
}

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
  material += "pipeline=" + rule.pipeline + "@" + rule.pipeline_version + "\n";
  material += "parameters=" + rule.parameters_json + "\n";
  return Sha256Hex(material);
}

std::vector<PlannedJob> PlanJobs(const std::string& study_id, const std::vector<SeriesRef>& series,
                                 const std::vector<Rule>& rules) {
  const auto inputs = InputInstances(series);
  std::vector<PlannedJob> jobs;
  if (inputs.empty()) return jobs;
  for (const auto& rule : rules) {
    jobs.push_back(PlannedJob{rule, IdempotencyKey(study_id, inputs, rule), inputs.size()});
  }
  return jobs;
}

}  // namespace procnode
