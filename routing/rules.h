// What a job is made from: the rule that fired (Rule, its id and rule-set version recorded on
// the job), and its idempotency key. The rule language itself is in rule_set.h.
//
// IdempotencyKey() is hash(study, input instances, rule id@version, pipeline@version,
// parameters) (design doc, data flow); the parameters as KeyParametersJson writes them. The instance list is order-independent, and procnode's own
// result series are not inputs, so the same study stable twice without new instances, or made
// unstable by our own results, gives the same key and so one job. Pure and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/job_spec.h"
#include "core/study.h"

namespace procnode {

struct Rule {
  std::string id;
  int version = 1;
  // The job it makes: processor (e.g. "volume-stats") and its version (bumps the key when the
  // processor's output would change), parameters, device, anonymization, destinations.
  JobSpec spec;
};

struct PlannedJob {
  Rule rule;
  std::string idempotency_key;
  std::size_t input_instances = 0;
  int priority = 0;
  std::string series_id;  // series-level rules: the series this job is for
};

// Input instance IDs of a study: every instance of every series not produced by procnode.
std::vector<std::string> InputInstances(const std::vector<SeriesRef>& series);

std::string IdempotencyKey(const std::string& study_id, std::vector<std::string> input_instances,
                           const Rule& rule);

}  // namespace procnode
