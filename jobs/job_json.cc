#include "jobs/job_json.h"

namespace procnode {
namespace {

nlohmann::json NullIfEmpty(const std::string& value) {
  return value.empty() ? nlohmann::json(nullptr) : nlohmann::json(value);
}

}  // namespace

nlohmann::json JobToJson(const Job& job) {
  nlohmann::json out{
      {"id", job.id},
      {"state", job.state},
      {"study", job.study_id},
      {"orthanc", job.orthanc_id},
      {"needs_gpu", job.spec.requirements.needs_gpu},
      {"waiting_for", NullIfEmpty(job.waiting_for)},
      {"series", NullIfEmpty(job.series_id)},
      {"cancel_requested", job.cancel_requested},
      {"rule", {{"id", job.rule_id}, {"version", job.rule_version}}},
      {"pipeline", job.spec.processor},
      {"parameters", job.spec.parameters},
      {"spec", JobSpecToJson(job.spec)},
      {"priority", job.priority},
      {"attempts", job.attempts},
      {"max_attempts", job.max_attempts},
      {"progress", job.progress},
      {"progress_message", job.progress_message},
      {"error", NullIfEmpty(job.error)},
      {"device", NullIfEmpty(job.device)},
      {"lease_owner", NullIfEmpty(job.lease_owner)},
      {"lease_expires_at", NullIfEmpty(job.lease_expires_at)},
      {"not_before", NullIfEmpty(job.not_before)},
      {"created_at", NullIfEmpty(job.created_at)},
      {"started_at", NullIfEmpty(job.started_at)},
      {"finished_at", NullIfEmpty(job.finished_at)},
      {"updated_at", NullIfEmpty(job.updated_at)},
      {"idempotency_key", job.idempotency_key},
  };
  out["result"] = job.result_json.empty() ? nlohmann::json(nullptr)
                                          : nlohmann::json::parse(job.result_json, nullptr, false);
  out["executor"] = job.executor;
  if (job.executor == "slurm" || !job.slurm.last_job_id.empty()) {
    const std::string& id = job.slurm.job_id.empty() || job.slurm.job_id == kSlurmSubmitting ? job.slurm.last_job_id : job.slurm.job_id;
    out["slurm"] = {{"job_id", NullIfEmpty(id)}, {"tracked", !job.slurm.job_id.empty()},
                    {"state", NullIfEmpty(job.slurm.state)}, {"reason", NullIfEmpty(job.slurm.reason)},
                    {"submitted_at", NullIfEmpty(job.slurm.submitted_at)}};
  }
  return out;
}

nlohmann::json JobToJson(const Job& job, const std::vector<JobEvent>& events) {
  nlohmann::json out = JobToJson(job);
  if (out.contains("slurm")) out["slurm"]["script"] = NullIfEmpty(job.slurm.script);
  out["events"] = nlohmann::json::array();
  for (const auto& event : events) {
    out["events"].push_back({{"at", event.at}, {"kind", event.kind}, {"owner", NullIfEmpty(event.owner)},
                             {"message", event.message}});
  }
  return out;
}

nlohmann::json DeliveryToJson(const Delivery& d) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"destination", d.destination}, {"state", d.state},          {"attempts", d.attempts},
          {"max_attempts", d.max_attempts}, {"instances", d.instances}, {"last_error", or_null(d.last_error)},
          {"next_attempt_at", d.state == "pending" ? or_null(d.next_attempt_at) : nlohmann::json(nullptr)},
          {"sent_at", or_null(d.sent_at)},   {"updated_at", or_null(d.updated_at)}};
}

}  // namespace procnode
