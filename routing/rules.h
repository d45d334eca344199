// Routing: from a complete study to the jobs it should create.
//
// A Rule names the pipeline to run; its id and version are recorded on every job it creates.
// DefaultRuleSet() is the built-in set used until admin-edited rules exist: one rule that sends
// every study with at least one input series to the walking-skeleton pipeline.
//
// IdempotencyKey() is hash(study, input instances, rule id@version, pipeline@version,
// parameters) (design doc, data flow). The instance list is order-independent, and procnode's own
// result series are not inputs, so the same study stable twice without new instances, or made
// unstable by our own results, gives the same key and so one job. Pure and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/study.h"

namespace procnode {

struct Rule {
  std::string id;
  int version = 1;
  std::string pipeline;          // e.g. "volume-stats"
  std::string pipeline_version;  // bumps the key when the pipeline's output would change
  std::string parameters_json = "{}";
};

struct PlannedJob {
  Rule rule;
  std::string idempotency_key;
  std::size_t input_instances = 0;
  int priority = 0;
  std::string series_id;  // series-level rules: the series this job is for
};

std::vector<Rule> DefaultRuleSet();

// Input instance IDs of a study: every instance of every series not produced by procnode.
std::vector<std::string> InputInstances(const std::vector<SeriesRef>& series);

std::string IdempotencyKey(const std::string& study_id, std::vector<std::string> input_instances,
                           const Rule& rule);

// The jobs a study should have under `rules`. Empty when the study holds only procnode results.
std::vector<PlannedJob> PlanJobs(const std::string& study_id, const std::vector<SeriesRef>& series,
                                 const std::vector<Rule>& rules);

}  // namespace procnode
