// JSON views of jobs for REST answers and the CLI (GET /procnode/jobs, /procnode/jobs/{id}).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "jobs/job_queue.h"

namespace procnode {

nlohmann::json JobToJson(const Job& job);
nlohmann::json JobToJson(const Job& job, const std::vector<JobEvent>& events);
nlohmann::json DeliveryToJson(const Delivery& delivery);

}  // namespace procnode
