#include "jobs/job_queue.h"


#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/format.h"
#include "pg/pg.h"

namespace procnode {
namespace {

// A timestamp column as ISO 8601 UTC text ('' when NULL), named `column`.
std::string Iso(const std::string& column) {
  return "coalesce(to_char(j." + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') AS " + column;
}

// "EXISTS (...)": a live worker with a GPU that may run the job of table alias `jobs`.
std::string LiveGpuWorkerFor(const std::string& jobs) {
  return "EXISTS (SELECT 1 FROM workers w WHERE w.gpu IS NOT NULL AND w.expires_at > now() AND (" + jobs +
         ".orthanc_id = '' OR w.orthanc_id = " + jobs + ".orthanc_id))";
}

// A live worker of the job's Orthanc with `memory` (a workers column) at least the job's `need`
// (a jobs column); a worker that does not know its memory counts as enough.
std::string LiveWorkerWithMemory(const std::string& jobs, const std::string& memory, const std::string& need,
                                 bool gpu) {
  return "EXISTS (SELECT 1 FROM workers w WHERE w.expires_at > now()" + std::string(gpu ? " AND w.gpu IS NOT NULL" : "") +
         " AND (" + jobs + ".orthanc_id = '' OR w.orthanc_id = " + jobs + ".orthanc_id) AND (w." + memory +
         " = 0 OR w." + memory + " >= " + jobs + "." + need + "))";
}

// "6.0 GiB" of a byte count column.
std::string GiB(const std::string& column) {
  return "to_char(" + column + " / 1073741824.0, 'FM999999990.0') || ' GiB'";
}

// What claiming a job sets ($1 = owner, $2 = lease seconds), for alias j.
const char* const kClaimSet =
    "state = 'running', attempts = j.attempts + 1, lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),"
    " started_at = now(), updated_at = now(), progress = 0, progress_message = 'claimed'";

// What queueing a job again with fresh attempts sets (admin retry, re-run).
const char* const kQueueAgainSet =
    "state = 'queued', attempts = 0, error = NULL, not_before = now(), progress = 0, progress_message = 'queued again',"
    " finished_at = NULL, updated_at = now()";

// Columns of a Job (table alias j).
const std::string kJobColumns =
    "j.id, j.orthanc_id, j.idempotency_key, j.study_id, coalesce(j.series_id, '') AS series_id, j.rule_id, j.rule_version,"
    " j.cancel_requested, j.spec::text AS spec, j.state, j.priority, j.attempts, j.max_attempts,"
    " coalesce(j.lease_owner, '') AS lease_owner, j.progress, j.progress_message,"
    " coalesce(j.error, '') AS error, coalesce(j.device, '') AS device,"
    " coalesce(j.result::text, '') AS result, " +
    Iso("created_at") + ", " + Iso("started_at") + ", " + Iso("finished_at") + ", " + Iso("updated_at") + ", " +
    Iso("lease_expires_at") + ", " + Iso("not_before") + ", " + Iso("slurm_submitted_at") +
    ", j.executor, coalesce(j.slurm_job_id, '') AS slurm_job_id, coalesce(j.slurm_last_job_id, '') AS slurm_last_job_id,"
    " coalesce(j.slurm_state, '') AS slurm_state, coalesce(j.slurm_reason, '') AS slurm_reason,"
    " coalesce(j.slurm_script, '') AS slurm_script"
    ", CASE WHEN j.state <> 'queued' THEN ''"
    " WHEN j.executor = 'slurm' THEN CASE WHEN j.slurm_job_id IS NULL OR j.slurm_job_id = '" + std::string(kSlurmSubmitting) + "'"
    " THEN 'submission to Slurm' ELSE 'Slurm job ' || j.slurm_job_id || ' to start' ||"
    " CASE WHEN coalesce(j.slurm_reason, '') NOT IN ('', 'None') THEN ' (' || j.slurm_reason || ')' ELSE '' END END"
    " WHEN j.needs_gpu AND NOT " + LiveWorkerWithMemory("j", "gpu_memory_bytes", "device_memory_bytes", true) +
    " THEN 'a worker with a GPU' || CASE WHEN j.device_memory_bytes > 0 THEN ' and ' || " + GiB("j.device_memory_bytes") +
    " ELSE '' END || ': none is running'"
    " WHEN j.host_memory_bytes > 0 AND NOT " + LiveWorkerWithMemory("j", "host_memory_bytes", "host_memory_bytes", false) +
    " THEN 'a worker with ' || " + GiB("j.host_memory_bytes") + " || ' of memory: none is running'"
    " ELSE '' END AS waiting_for";

Job JobFromRow(const pqxx::row& row) {
  Job job;
  job.id = row["id"].as<int64_t>();
  job.orthanc_id = row["orthanc_id"].as<std::string>();
  job.idempotency_key = row["idempotency_key"].as<std::string>();
  job.study_id = row["study_id"].as<std::string>();
  job.series_id = row["series_id"].as<std::string>();
  job.cancel_requested = row["cancel_requested"].as<bool>();
  job.rule_id = row["rule_id"].as<std::string>();
  job.rule_version = row["rule_version"].as<int>();
  job.spec = ParseJobSpec(row["spec"].as<std::string>());
  job.state = row["state"].as<std::string>();
  job.priority = row["priority"].as<int>();
  job.attempts = row["attempts"].as<int>();
  job.max_attempts = row["max_attempts"].as<int>();
  job.lease_owner = row["lease_owner"].as<std::string>();
  job.progress = row["progress"].as<double>();
  job.progress_message = row["progress_message"].as<std::string>();
  job.error = row["error"].as<std::string>();
  job.device = row["device"].as<std::string>();
  job.result_json = row["result"].as<std::string>();
  job.created_at = row["created_at"].as<std::string>();
  job.started_at = row["started_at"].as<std::string>();
  job.finished_at = row["finished_at"].as<std::string>();
  job.updated_at = row["updated_at"].as<std::string>();
  job.lease_expires_at = row["lease_expires_at"].as<std::string>();
  job.not_before = row["not_before"].as<std::string>();
  job.waiting_for = row["waiting_for"].as<std::string>();
  job.executor = row["executor"].as<std::string>();
  job.slurm.job_id = row["slurm_job_id"].as<std::string>();
  job.slurm.last_job_id = row["slurm_last_job_id"].as<std::string>();
  job.slurm.state = row["slurm_state"].as<std::string>();
  job.slurm.reason = row["slurm_reason"].as<std::string>();
  job.slurm.script = row["slurm_script"].as<std::string>();
  job.slurm.submitted_at = row["slurm_submitted_at"].as<std::string>();
  return job;
}

// A job's state, locked for the rest of the transaction, and whether it is running with nobody
// renewing its lease (its worker is gone). Error(kNotFound) for an unknown job.
std::pair<std::string, bool> LockedState(pqxx::work& tx, int64_t id) {
  const auto current = tx.exec_params(
      "SELECT state, coalesce(lease_expires_at < now(), false) FROM jobs WHERE id = $1 FOR UPDATE", id);
  if (current.empty()) throw Error(ErrorCode::kNotFound, "job " + std::to_string(id) + " does not exist");
  const std::string state = current[0][0].as<std::string>();
  return {state, state == "running" && current[0][1].as<bool>()};
}

void AddEvent(pqxx::work& tx, int64_t id, const std::string& kind, const std::string& owner,
              const std::string& message) {
  tx.exec_params("INSERT INTO job_events (job_id, kind, owner, message) VALUES ($1, $2, nullif($3, ''), $4)",
                 id, kind, owner, message);
}

// Updates a job only while `owner` holds its lease ($1 = id, $2 = owner, then `args`).
template <typename... Args>
bool UpdateOwnedJob(pqxx::work& tx, const std::string& set_clause, int64_t id, const std::string& owner,
                    Args&&... args) {
  return tx.exec_params("UPDATE jobs SET " + set_clause + " WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                        id, owner, std::forward<Args>(args)...)
             .affected_rows() == 1;
}

const std::string kDeliveryColumns =
    "d.id, d.job_id, d.destination, d.instances, d.state, d.attempts, d.max_attempts, coalesce(d.last_error, '') AS last_error, " +
    std::string("coalesce(to_char(d.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') AS next_attempt_at, ") +
    "coalesce(to_char(d.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') AS sent_at, " +
    "coalesce(to_char(d.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') AS updated_at";

Delivery DeliveryFromRow(const pqxx::row& row) {
  Delivery d;
  d.id = row["id"].as<int64_t>();
  d.job_id = row["job_id"].as<int64_t>();
  d.destination = row["destination"].as<std::string>();
  const auto instances = nlohmann::json::parse(row["instances"].as<std::string>(), nullptr, false);
  if (instances.is_array()) {
    for (const auto& id : instances) d.instances.push_back(id.get<std::string>());
  }
  d.state = row["state"].as<std::string>();
  d.attempts = row["attempts"].as<int>();
  d.max_attempts = row["max_attempts"].as<int>();
  d.last_error = row["last_error"].as<std::string>();
  d.next_attempt_at = row["next_attempt_at"].as<std::string>();
  d.sent_at = row["sent_at"].as<std::string>();
  d.updated_at = row["updated_at"].as<std::string>();
  return d;
}

}  // namespace

bool IsJobState(const std::string& state) {
  return state == "queued" || state == "running" || state == "done" || state == "failed" ||
         state == "cancelled";
}

PgJobQueue::PgJobQueue(std::string dsn, QueueOptions options)
    : options_(options), pool_(std::make_unique<pg::ConnectionPool>(std::move(dsn), "job database")) {}

PgJobQueue::~PgJobQueue() = default;

template <typename F>
auto PgJobQueue::WithTransaction(const char* what, F&& body) {
  return pg::Transaction(*pool_, what, std::forward<F>(body));
}

EnqueueResult PgJobQueue::Enqueue(const EnqueueRequest& request) {
  return WithTransaction("enqueue", [&](pqxx::work& tx) {
    const auto inserted = tx.exec_params(
        "INSERT INTO jobs (idempotency_key, study_id, series_id, rule_id, rule_version, pipeline, parameters,"
        " priority, max_attempts, orthanc_id, needs_gpu, prefers_gpu, spec, device_memory_bytes, host_memory_bytes, executor)"
        " VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16)"
        " ON CONFLICT (orthanc_id, idempotency_key) DO NOTHING RETURNING id",
        request.idempotency_key, request.study_id, request.series_id, request.rule_id, request.rule_version,
        request.spec.processor, request.spec.parameters.dump(), request.priority, request.max_attempts, options_.orthanc_id,
        request.spec.requirements.needs_gpu, request.spec.requirements.prefers_gpu, SerializeJobSpec(request.spec),
        static_cast<int64_t>(request.spec.requirements.device_memory_bytes),
        static_cast<int64_t>(request.spec.requirements.host_memory_bytes),
        request.spec.executor.empty() ? options_.default_executor : request.spec.executor);
    if (!inserted.empty()) {
      const int64_t id = inserted[0][0].as<int64_t>();
      AddEvent(tx, id, "enqueued", "", "rule " + request.rule_id + "@" + std::to_string(request.rule_version));
      return EnqueueResult{id, true};
    }
    const auto existing = tx.exec_params("SELECT id FROM jobs WHERE orthanc_id = $1 AND idempotency_key = $2",
                                         options_.orthanc_id, request.idempotency_key);
    return EnqueueResult{existing[0][0].as<int64_t>(), false};
  });
}

std::optional<Job> PgJobQueue::Claim(const std::string& owner) {
  return WithTransaction("claim", [&](pqxx::work& tx) -> std::optional<Job> {
    // A running job whose lease expired and that has used all its attempts is failed, not retried.
    const auto reaped = tx.exec(
        "UPDATE jobs SET state = 'failed', finished_at = now(), updated_at = now(),"
        " error = 'worker stopped responding (lease expired) on attempt ' || attempts || ' of ' || max_attempts,"
        " lease_owner = NULL, lease_expires_at = NULL"
        " WHERE state = 'running' AND lease_expires_at < now() AND attempts >= max_attempts AND NOT cancel_requested"
        " RETURNING id, error");
    for (const auto& row : reaped) AddEvent(tx, row[0].as<int64_t>(), "failed", "", row[1].as<std::string>());
    // A job cancelled while running whose worker then died is cancelled, not run again.
    for (const auto& row : tx.exec(
             "UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL,"
             " lease_expires_at = NULL WHERE state = 'running' AND lease_expires_at < now() AND cancel_requested"
             " RETURNING id")) {
      AddEvent(tx, row[0].as<int64_t>(), "cancelled", "", "cancel requested; its worker stopped responding");
    }

    const auto claimed = tx.exec_params(
        std::string("WITH candidate AS ("
                    " SELECT id, state AS previous_state, coalesce(lease_owner, '') AS previous_owner FROM jobs"
                    " WHERE ((state = 'queued' AND not_before <= now())"
                    "    OR (state = 'running' AND lease_expires_at < now()))"
                    "   AND executor = 'local' AND ($3 = '' OR orthanc_id IN ($3, '')) AND (NOT needs_gpu OR $4)"
                    "   AND ($6::bigint = 0 OR host_memory_bytes <= $6::bigint)"
                    "   AND (NOT needs_gpu OR $7::bigint = 0 OR device_memory_bytes <= $7::bigint)"
                    "   AND (NOT prefers_gpu OR $4 OR created_at < now() - make_interval(secs => $5) OR NOT ") +
            LiveGpuWorkerFor("jobs") +
            ") ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " UPDATE jobs j SET " + kClaimSet +
            " FROM candidate c WHERE j.id = c.id RETURNING c.previous_state, c.previous_owner, " + kJobColumns,
        owner, static_cast<double>(options_.lease.count()), options_.orthanc_id, options_.has_gpu,
        static_cast<double>(options_.gpu_wait.count()), static_cast<int64_t>(options_.host_memory_bytes),
        static_cast<int64_t>(options_.gpu_memory_bytes));
    if (claimed.empty()) return std::nullopt;
    Job job = JobFromRow(claimed[0]);
    const bool reclaimed = claimed[0]["previous_state"].as<std::string>() == "running";
    AddEvent(tx, job.id, reclaimed ? "reclaimed" : "claimed", owner,
             (reclaimed ? "lease of " + claimed[0]["previous_owner"].as<std::string>() + " expired; " : std::string()) +
                 "attempt " + std::to_string(job.attempts) + " of " + std::to_string(job.max_attempts));
    return job;
  });
}

std::optional<Job> PgJobQueue::ClaimById(int64_t id, const std::string& owner) {
  return WithTransaction("claim by id", [&](pqxx::work& tx) -> std::optional<Job> {
    const auto current = tx.exec_params(
        "SELECT state, orthanc_id, needs_gpu, host_memory_bytes, device_memory_bytes FROM jobs WHERE id = $1 FOR UPDATE", id);
    if (current.empty()) throw Error(ErrorCode::kNotFound, "job " + std::to_string(id) + " does not exist");
    const std::string holder = current[0][1].as<std::string>();
    if (!options_.orthanc_id.empty() && !holder.empty() && holder != options_.orthanc_id) {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(id) + " belongs to Orthanc \"" + holder +
                                                "\", not to \"" + options_.orthanc_id + "\" that this worker reaches");
    }
    if (current[0][2].as<bool>() && !options_.has_gpu) {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(id) + " needs a GPU, and this worker has none");
    }
    auto gib = [](uint64_t bytes) { return FormatNumber("%.1f GiB", static_cast<double>(bytes) / (1ull << 30)); };
    const auto host_need = current[0][3].as<uint64_t>(), device_need = current[0][4].as<uint64_t>();
    if (options_.host_memory_bytes > 0 && host_need > options_.host_memory_bytes) {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(id) + " needs about " + gib(host_need) +
                                                " of memory; this worker's machine has " + gib(options_.host_memory_bytes));
    }
    if (current[0][2].as<bool>() && options_.gpu_memory_bytes > 0 && device_need > options_.gpu_memory_bytes) {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(id) + " needs about " + gib(device_need) +
                                                " of GPU memory; this worker's GPU has " + gib(options_.gpu_memory_bytes));
    }
    const auto claimed = tx.exec_params(
        std::string("UPDATE jobs j SET ") + kClaimSet +
            " WHERE j.id = $3 AND (j.state = 'queued' OR (j.state = 'running' AND j.lease_expires_at < now())) RETURNING " +
            kJobColumns,
        owner, static_cast<double>(options_.lease.count()), id);
    if (claimed.empty()) return std::nullopt;
    Job job = JobFromRow(claimed[0]);
    AddEvent(tx, job.id, "claimed", owner,
             "given to this worker; attempt " + std::to_string(job.attempts) + " of " + std::to_string(job.max_attempts));
    return job;
  });
}

std::vector<HeldLease> PgJobQueue::Heartbeat(const std::string& owner, const std::vector<int64_t>& ids) {
  if (ids.empty()) return {};
  std::string list;
  for (const int64_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  return WithTransaction("heartbeat", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(
        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $2)"
        " WHERE state = 'running' AND lease_owner = $1 AND id = ANY(('{' || $3 || '}')::bigint[])"
        " RETURNING id, cancel_requested",
        owner, static_cast<double>(options_.lease.count()), list);
    std::vector<HeldLease> held;
    for (const auto& row : rows) held.push_back({row[0].as<int64_t>(), row[1].as<bool>()});
    return held;
  });
}

bool PgJobQueue::Progress(int64_t id, const std::string& owner, double fraction, const std::string& message) {
  return WithTransaction("progress", [&](pqxx::work& tx) {
    return UpdateOwnedJob(tx, "progress = $3, progress_message = $4, updated_at = now()", id, owner, fraction,
                          message);
  });
}

bool PgJobQueue::Complete(int64_t id, const std::string& owner, const std::string& result_json,
                          const std::string& device) {
  return WithTransaction("complete", [&](pqxx::work& tx) {
    const bool owned = UpdateOwnedJob(
        tx,
        "state = 'done', result = $3::jsonb, device = $4, progress = 1, progress_message = 'done', error = NULL,"
        " finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL, slurm_job_id = NULL",
        id, owner, result_json, device);
    if (owned) AddEvent(tx, id, "done", owner, device.empty() ? "" : "device " + device);
    return owned;
  });
}

FailOutcome PgJobQueue::Fail(int64_t id, const std::string& owner, const std::string& message, bool retryable) {
  return WithTransaction("fail", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(
        "UPDATE jobs SET"
        " state = CASE WHEN $4 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,"
        " not_before = now() + make_interval(secs => $5 * power(2, greatest(attempts - 1, 0))),"
        " finished_at = CASE WHEN $4 AND attempts < max_attempts THEN NULL ELSE now() END,"
        " error = $3, updated_at = now(), lease_owner = NULL, lease_expires_at = NULL, slurm_job_id = NULL"
        " WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING state, attempts, max_attempts",
        id, owner, message, retryable, options_.retry_backoff.count() / 1000.0);
    if (rows.empty()) return FailOutcome::kLeaseLost;
    const bool retry = rows[0][0].as<std::string>() == "queued";
    AddEvent(tx, id, retry ? "retry" : "failed", owner, message);
    return retry ? FailOutcome::kRetryScheduled : FailOutcome::kFailed;
  });
}

bool PgJobQueue::Release(int64_t id, const std::string& owner, const std::string& reason) {
  return WithTransaction("release", [&](pqxx::work& tx) {
    const bool owned = UpdateOwnedJob(
        tx,
        "state = 'queued', attempts = greatest(attempts - 1, 0), not_before = now(), progress = 0,"
        " progress_message = 'released: ' || $3, updated_at = now(), lease_owner = NULL, lease_expires_at = NULL",
        id, owner, reason);
    if (owned) AddEvent(tx, id, "released", owner, reason);
    return owned;
  });
}

bool PgJobQueue::MarkCancelled(int64_t id, const std::string& owner) {
  return WithTransaction("cancel", [&](pqxx::work& tx) {
    const bool owned = UpdateOwnedJob(
        tx,
        "state = 'cancelled', progress_message = 'cancelled', finished_at = now(), updated_at = now(),"
        " lease_owner = NULL, lease_expires_at = NULL, slurm_job_id = NULL",
        id, owner);
    if (owned) AddEvent(tx, id, "cancelled", owner, "stopped on request");
    return owned;
  });
}

Job PgJobQueue::Retry(int64_t id, const std::string& who) {
  return WithTransaction("retry", [&](pqxx::work& tx) {
    const auto [state, orphaned] = LockedState(tx, id);
    if (state != "failed" && state != "cancelled" && state != "done" && !orphaned) {
      throw Error(ErrorCode::kInvalidInput,
                  "job " + std::to_string(id) + " is " + state +
                      (state == "running" ? " and its worker is alive (lease current): cancel it first"
                                          : ": only failed, cancelled or done jobs (or running ones whose worker is gone) "
                                            "can be retried"));
    }
    tx.exec_params(std::string("UPDATE jobs SET ") + kQueueAgainSet +
                       ", cancel_requested = false, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
                   id);
    AddEvent(tx, id, state == "done" ? "rerun-requested" : "retry-requested", who,
             orphaned ? "was running; its worker stopped renewing the lease" : "was " + state);
    return JobFromRow(tx.exec_params("SELECT " + kJobColumns + " FROM jobs j WHERE j.id = $1", id)[0]);
  });
}

bool PgJobQueue::Rerun(int64_t id, const std::string& reason) {
  return WithTransaction("rerun", [&](pqxx::work& tx) {
    const bool queued =
        tx.exec_params(std::string("UPDATE jobs SET ") + kQueueAgainSet + " WHERE id = $1 AND state = 'done'", id)
            .affected_rows() == 1;
    if (queued) AddEvent(tx, id, "rerun", "", reason);
    return queued;
  });
}

Job PgJobQueue::Cancel(int64_t id, const std::string& who) {
  return WithTransaction("cancel", [&](pqxx::work& tx) {
    const auto [state, orphaned] = LockedState(tx, id);
    if (state == "queued" || orphaned) {
      tx.exec_params(
          "UPDATE jobs SET state = 'cancelled', progress_message = 'cancelled', finished_at = now(),"
          " updated_at = now(), lease_owner = NULL, lease_expires_at = NULL, slurm_job_id = NULL WHERE id = $1",
          id);
      AddEvent(tx, id, "cancelled", who,
               orphaned ? "cancelled while running; its worker stopped renewing the lease" : "cancelled while queued");
    } else if (state == "running") {
      tx.exec_params("UPDATE jobs SET cancel_requested = true, updated_at = now() WHERE id = $1", id);
      AddEvent(tx, id, "cancel-requested", who, "its worker stops at the next heartbeat");
    } else {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(id) + " is " + state + ": nothing to cancel");
    }
    return JobFromRow(tx.exec_params("SELECT " + kJobColumns + " FROM jobs j WHERE j.id = $1", id)[0]);
  });
}

std::vector<Job> PgJobQueue::ReserveForSlurm(int limit) {
  return WithTransaction("reserve for Slurm", [&](pqxx::work& tx) {
    std::vector<Job> jobs;
    const auto rows = tx.exec_params(
        "WITH candidate AS (SELECT id FROM jobs WHERE executor = 'slurm' AND state = 'queued' AND slurm_job_id IS NULL"
        " AND not_before <= now() AND NOT cancel_requested AND ($1 = '' OR orthanc_id IN ($1, ''))"
        " ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET slurm_job_id = $3, slurm_state = NULL, slurm_reason = NULL,"
        " slurm_submitted_at = now(), updated_at = now() FROM candidate c WHERE j.id = c.id RETURNING " + kJobColumns,
        options_.orthanc_id, limit, kSlurmSubmitting);
    for (const auto& row : rows) jobs.push_back(JobFromRow(row));
    return jobs;
  });
}

void PgJobQueue::SlurmSubmitted(int64_t id, const std::string& slurm_job_id, const std::string& script) {
  WithTransaction("record a Slurm submission", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(
        "UPDATE jobs SET slurm_job_id = $2, slurm_last_job_id = $2, slurm_state = 'PENDING', slurm_reason = NULL,"
        " slurm_script = $3, progress_message = 'submitted to Slurm', updated_at = now()"
        " WHERE id = $1 AND slurm_job_id = $4",
        id, slurm_job_id, script, kSlurmSubmitting);
    if (rows.affected_rows() == 1) AddEvent(tx, id, "submitted", "", "Slurm job " + slurm_job_id);
    return true;
  });
}

namespace {
// A job whose batch job could not run it: an attempt is counted when the job was never claimed
// (a claimed one counted it then); retried with backoff while attempts and `retryable` allow,
// else failed; cancelled when an admin asked. Parameters: $1 id, $2 message, $3 retryable,
// $4 backoff seconds, $5 the batch job (or 'submitting').
// `n` holds the attempts counted (tries) and whether the job goes back to the queue (retry).
constexpr const char* kSlurmEndedSql =
    "UPDATE jobs j SET attempts = n.tries,"
    " state = CASE WHEN j.cancel_requested THEN 'cancelled' WHEN n.retry THEN 'queued' ELSE 'failed' END,"
    " not_before = now() + make_interval(secs => $4 * power(2, greatest(n.tries - 1, 0))),"
    " finished_at = CASE WHEN n.retry THEN NULL ELSE now() END,"
    " error = CASE WHEN j.cancel_requested THEN j.error ELSE $2 END,"
    " progress = CASE WHEN j.cancel_requested THEN j.progress ELSE 0 END,"
    " progress_message = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'Slurm: ' || left($2, 200) END,"
    " lease_owner = NULL, lease_expires_at = NULL, slurm_job_id = NULL, updated_at = now()"
    " FROM (SELECT id, tries, NOT cancel_requested AND $3 AND tries < max_attempts AS retry FROM"
    "   (SELECT id, cancel_requested, max_attempts, attempts + CASE WHEN state = 'queued' THEN 1 ELSE 0 END AS tries"
    "    FROM jobs WHERE id = $1 AND slurm_job_id = $5 AND state IN ('queued', 'running') FOR UPDATE) t) n"
    " WHERE j.id = n.id RETURNING j.state";
}  // namespace

std::string PgJobQueue::SlurmEnded(int64_t id, const std::string& slurm_job_id, const std::string& message, bool retryable) {
  return WithTransaction("record a Slurm job's end", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(kSlurmEndedSql, id, message, retryable, options_.retry_backoff.count() / 1000.0, slurm_job_id);
    if (rows.empty()) return std::string();
    const std::string state = rows[0][0].as<std::string>();
    AddEvent(tx, id, state == "queued" ? "retry" : state, "", message);
    return state;
  });
}

std::vector<SlurmTracked> PgJobQueue::SlurmTrackedJobs() {
  return WithTransaction("list Slurm jobs", [&](pqxx::work& tx) {
    std::vector<SlurmTracked> out;
    for (const auto& row : tx.exec_params(
             "SELECT id, slurm_job_id, coalesce(slurm_state, ''), coalesce(slurm_reason, ''),"
             " extract(epoch FROM now() - slurm_submitted_at)::float8 FROM jobs"
             " WHERE slurm_job_id IS NOT NULL AND ($1 = '' OR orthanc_id IN ($1, '')) ORDER BY id",
             options_.orthanc_id)) {
      out.push_back({.id = row[0].as<int64_t>(), .slurm_job_id = row[1].as<std::string>(), .slurm_state = row[2].as<std::string>(),
                     .slurm_reason = row[3].as<std::string>(), .seconds_since_submission = row[4].is_null() ? 0 : row[4].as<double>()});
    }
    return out;
  });
}

void PgJobQueue::SlurmObserved(int64_t id, const std::string& slurm_job_id, const std::string& state, const std::string& reason) {
  WithTransaction("record a Slurm job's state", [&](pqxx::work& tx) {
    tx.exec_params("UPDATE jobs SET slurm_state = $3, slurm_reason = nullif($4, ''), updated_at = now()"
                   " WHERE id = $1 AND slurm_job_id = $2",
                   id, slurm_job_id, state, reason);
    return true;
  });
}

int PgJobQueue::SaveRuleSet(const std::string& body, const std::string& author, const std::string& comment) {
  return WithTransaction("save rule set", [&](pqxx::work& tx) {
    return tx.exec_params("INSERT INTO rule_sets (body, author, comment) VALUES ($1, $2, $3) RETURNING version",
                          body, author, comment)[0][0]
        .as<int>();
  });
}

namespace {
constexpr const char* kRuleColumns =
    "version, author, comment,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at";

StoredRuleSet RuleSetFromRow(const pqxx::row& row, bool with_body) {
  StoredRuleSet stored;
  stored.version = row["version"].as<int>();
  stored.author = row["author"].as<std::string>();
  stored.comment = row["comment"].as<std::string>();
  stored.created_at = row["created_at"].as<std::string>();
  if (with_body) stored.body = row["body"].as<std::string>();
  return stored;
}
}  // namespace

std::optional<StoredRuleSet> PgJobQueue::ActiveRuleSet() {
  return WithTransaction("active rule set", [&](pqxx::work& tx) -> std::optional<StoredRuleSet> {
    const auto rows = tx.exec(std::string("SELECT body, ") + kRuleColumns + " FROM rule_sets ORDER BY version DESC LIMIT 1");
    if (rows.empty()) return std::nullopt;
    return RuleSetFromRow(rows[0], true);
  });
}

int PgJobQueue::ActiveRuleSetVersion() {
  return WithTransaction("rule set version", [&](pqxx::work& tx) {
    return tx.exec("SELECT coalesce(max(version), 0) FROM rule_sets")[0][0].as<int>();
  });
}

std::optional<StoredRuleSet> PgJobQueue::RuleSetVersion(int version) {
  return WithTransaction("rule set", [&](pqxx::work& tx) -> std::optional<StoredRuleSet> {
    const auto rows = tx.exec_params(std::string("SELECT body, ") + kRuleColumns + " FROM rule_sets WHERE version = $1", version);
    if (rows.empty()) return std::nullopt;
    return RuleSetFromRow(rows[0], true);
  });
}

std::vector<StoredRuleSet> PgJobQueue::RuleSetHistory(int limit) {
  return WithTransaction("rule set history", [&](pqxx::work& tx) {
    std::vector<StoredRuleSet> history;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + kRuleColumns +
                                              " FROM rule_sets ORDER BY version DESC LIMIT $1",
                                          limit)) {
      history.push_back(RuleSetFromRow(row, false));
    }
    return history;
  });
}

std::optional<Job> PgJobQueue::Get(int64_t id) {
  return WithTransaction("get", [&](pqxx::work& tx) -> std::optional<Job> {
    const auto rows = tx.exec_params("SELECT " + kJobColumns + " FROM jobs j WHERE j.id = $1", id);
    if (rows.empty()) return std::nullopt;
    return JobFromRow(rows[0]);
  });
}

std::vector<Job> PgJobQueue::List(const std::optional<std::string>& state, int limit) {
  return WithTransaction("list", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params("SELECT " + kJobColumns +
                                         " FROM jobs j WHERE ($1 = '' OR j.state = $1)"
                                         " ORDER BY j.id DESC LIMIT $2",
                                     state.value_or(""), limit);
    std::vector<Job> jobs;
    for (const auto& row : rows) jobs.push_back(JobFromRow(row));
    return jobs;
  });
}

std::vector<JobEvent> PgJobQueue::Events(int64_t id) {
  return WithTransaction("events", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), kind,"
        " coalesce(owner, ''), message FROM job_events WHERE job_id = $1 ORDER BY id",
        id);
    std::vector<JobEvent> events;
    for (const auto& row : rows) {
      events.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                        row[3].as<std::string>()});
    }
    return events;
  });
}

std::map<std::string, int64_t> PgJobQueue::CountByState() {
  return WithTransaction("count", [&](pqxx::work& tx) {
    std::map<std::string, int64_t> counts{{"queued", 0}, {"running", 0}, {"done", 0}, {"failed", 0}, {"cancelled", 0}};
    for (const auto& row : tx.exec("SELECT state, count(*) FROM jobs GROUP BY state")) {
      counts[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    return counts;
  });
}

void PgJobQueue::AddDelivery(int64_t job_id, const std::string& destination, const std::vector<std::string>& instances,
                             int max_attempts) {
  WithTransaction("add delivery", [&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO deliveries (job_id, destination, instances, max_attempts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (job_id, destination) DO UPDATE SET instances = excluded.instances, state = 'pending',"
        " attempts = 0, max_attempts = excluded.max_attempts, next_attempt_at = now(), lease_owner = NULL,"
        " lease_expires_at = NULL, last_error = NULL, sent_at = NULL, updated_at = now()",
        job_id, destination, nlohmann::json(instances).dump(), max_attempts);
    AddEvent(tx, job_id, "delivery-queued", "", std::to_string(instances.size()) + " object(s) to " + destination);
    return 0;
  });
}

std::optional<Delivery> PgJobQueue::ClaimDelivery(const std::string& owner, int lease_seconds) {
  return WithTransaction("claim delivery", [&](pqxx::work& tx) -> std::optional<Delivery> {
    const auto rows = tx.exec_params(
        "UPDATE deliveries d SET state = 'sending', lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),"
        " attempts = attempts + 1, updated_at = now()"
        " WHERE id = (SELECT id FROM deliveries WHERE (state = 'pending' AND next_attempt_at <= now())"
        "   OR (state = 'sending' AND lease_expires_at < now()) ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING " + kDeliveryColumns,
        owner, lease_seconds);
    if (rows.empty()) return std::nullopt;
    return DeliveryFromRow(rows[0]);
  });
}

void PgJobQueue::DeliverySent(int64_t id, const std::string& owner) {
  WithTransaction("delivery sent", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params(
        "UPDATE deliveries SET state = 'sent', sent_at = now(), lease_owner = NULL, lease_expires_at = NULL,"
        " last_error = NULL, updated_at = now() WHERE id = $1 AND lease_owner = $2 RETURNING job_id, destination, attempts",
        id, owner);
    if (!rows.empty()) {
      AddEvent(tx, rows[0][0].as<int64_t>(), "delivered", owner,
               "to " + rows[0][1].as<std::string>() + " (attempt " + rows[0][2].as<std::string>() + ")");
    }
    return 0;
  });
}

std::string PgJobQueue::DeliveryFailed(int64_t id, const std::string& owner, const std::string& error, double backoff_seconds) {
  return WithTransaction("delivery failed", [&](pqxx::work& tx) -> std::string {
    const auto current = tx.exec_params("SELECT job_id, destination, attempts, max_attempts FROM deliveries"
                                        " WHERE id = $1 AND lease_owner = $2 FOR UPDATE",
                                        id, owner);
    if (current.empty()) return "";
    const auto job_id = current[0][0].as<int64_t>();
    const auto destination = current[0][1].as<std::string>();
    const int attempts = current[0][2].as<int>(), max_attempts = current[0][3].as<int>();
    if (attempts >= max_attempts) {
      tx.exec_params("UPDATE deliveries SET state = 'dead', last_error = $2, lease_owner = NULL, lease_expires_at = NULL,"
                     " updated_at = now() WHERE id = $1",
                     id, error);
      AddEvent(tx, job_id, "dead-letter", owner,
               "to " + destination + ": gave up after " + std::to_string(attempts) + " attempt(s): " + error);
      return "dead";
    }
    const double wait = backoff_seconds * std::pow(2.0, attempts - 1);
    tx.exec_params("UPDATE deliveries SET state = 'pending', last_error = $2, lease_owner = NULL, lease_expires_at = NULL,"
                   " next_attempt_at = now() + make_interval(secs => $3), updated_at = now() WHERE id = $1",
                   id, error, wait);
    AddEvent(tx, job_id, "delivery-failed", owner,
             "to " + destination + " (attempt " + std::to_string(attempts) + " of " + std::to_string(max_attempts) +
                 ", next in " + std::to_string(static_cast<int>(std::lround(wait))) + " s): " + error);
    return "pending";
  });
}

std::vector<Delivery> PgJobQueue::Deliveries(int64_t job_id) {
  return WithTransaction("list deliveries", [&](pqxx::work& tx) {
    std::vector<Delivery> out;
    for (const auto& row : tx.exec_params("SELECT " + kDeliveryColumns + " FROM deliveries d WHERE d.job_id = $1 ORDER BY d.id", job_id)) {
      out.push_back(DeliveryFromRow(row));
    }
    return out;
  });
}

std::map<int64_t, std::vector<Delivery>> PgJobQueue::Deliveries(const std::vector<int64_t>& job_ids) {
  std::map<int64_t, std::vector<Delivery>> out;
  if (job_ids.empty()) return out;
  std::string array = "{";
  for (std::size_t i = 0; i < job_ids.size(); ++i) array += (i ? "," : "") + std::to_string(job_ids[i]);
  array += "}";
  return WithTransaction("list deliveries", [&](pqxx::work& tx) {
    for (const auto& row : tx.exec_params("SELECT " + kDeliveryColumns +
                                              " FROM deliveries d WHERE d.job_id = ANY($1::bigint[]) ORDER BY d.job_id, d.id",
                                          array)) {
      Delivery d = DeliveryFromRow(row);
      out[d.job_id].push_back(std::move(d));
    }
    return out;
  });
}

int PgJobQueue::Resend(int64_t job_id, const std::string& who) {
  return WithTransaction("resend", [&](pqxx::work& tx) {
    if (tx.exec_params("SELECT 1 FROM jobs WHERE id = $1", job_id).empty()) {
      throw Error(ErrorCode::kNotFound, "job " + std::to_string(job_id) + " does not exist");
    }
    const auto rows = tx.exec_params(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL,"
        " lease_owner = NULL, lease_expires_at = NULL, updated_at = now()"
        " WHERE job_id = $1 AND state IN ('sent', 'dead') RETURNING destination",
        job_id);
    if (rows.empty()) {
      throw Error(ErrorCode::kInvalidInput, "job " + std::to_string(job_id) + " has no sent or dead-lettered delivery to resend");
    }
    std::string destinations;
    for (const auto& row : rows) destinations += (destinations.empty() ? "" : ", ") + row[0].as<std::string>();
    AddEvent(tx, job_id, "resend-requested", who, "to " + destinations);
    return static_cast<int>(rows.size());
  });
}

PgJobQueue::Gauges PgJobQueue::ReadGauges() {
  return WithTransaction("gauges", [&](pqxx::work& tx) {
    Gauges g;
    g.jobs = {{"queued", 0}, {"running", 0}, {"done", 0}, {"failed", 0}, {"cancelled", 0}};
    for (const auto& row : tx.exec_params("SELECT state, count(*) FROM jobs WHERE $1 = '' OR orthanc_id IN ($1, '') GROUP BY state",
                                          options_.orthanc_id)) {
      g.jobs[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    g.oldest_queued_seconds = tx.exec_params(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM jobs"
        " WHERE state = 'queued' AND ($1 = '' OR orthanc_id IN ($1, ''))", options_.orthanc_id)[0][0].as<double>();
    for (const auto& row : tx.exec_params(
             "SELECT d.destination, d.state, count(*) FROM deliveries d JOIN jobs j ON j.id = d.job_id"
             " WHERE $1 = '' OR j.orthanc_id IN ($1, '') GROUP BY d.destination, d.state", options_.orthanc_id)) {
      g.deliveries[{row[0].as<std::string>(), row[1].as<std::string>()}] = row[2].as<int64_t>();
    }
    return g;
  });
}

std::map<std::string, int64_t> PgJobQueue::DeliveryCountByState() {
  return WithTransaction("count deliveries", [&](pqxx::work& tx) {
    std::map<std::string, int64_t> counts{{"pending", 0}, {"sending", 0}, {"sent", 0}, {"dead", 0}};
    for (const auto& row : tx.exec("SELECT state, count(*) FROM deliveries GROUP BY state")) {
      counts[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    return counts;
  });
}

double PgJobQueue::IntakeSeen(const std::string& study_id) {
  return WithTransaction("intake", [&](pqxx::work& tx) {
    return tx.exec_params1(
                 "INSERT INTO intake (orthanc_id, study_id) VALUES ($2, $1) ON CONFLICT (orthanc_id, study_id)"
                 " DO UPDATE SET updated_at = now() RETURNING extract(epoch FROM now() - first_seen)::float8",
                 study_id, options_.orthanc_id)[0]
        .as<double>();
  });
}

void PgJobQueue::IntakeDone(const std::string& study_id) {
  WithTransaction("intake done", [&](pqxx::work& tx) {
    tx.exec_params("DELETE FROM intake WHERE orthanc_id = $2 AND study_id = $1", study_id, options_.orthanc_id);
    tx.exec_params("INSERT INTO routed (orthanc_id, study_id) VALUES ($2, $1) ON CONFLICT (orthanc_id, study_id)"
                   " DO UPDATE SET routed_at = now()",
                   study_id, options_.orthanc_id);
    return 0;
  });
}

std::vector<std::string> PgJobQueue::NotRouted(const std::vector<std::string>& study_ids) {
  if (study_ids.empty()) return {};
  return WithTransaction("reconcile", [&](pqxx::work& tx) {
    std::string list;
    for (const auto& id : study_ids) list += (list.empty() ? "" : ",") + tx.quote(id);
    std::vector<std::string> out;
    for (const auto& row : tx.exec_params("SELECT s FROM unnest(ARRAY[" + list + "]::text[]) AS s"
                                          " WHERE s NOT IN (SELECT study_id FROM routed WHERE orthanc_id = $1)",
                                          options_.orthanc_id)) {
      out.push_back(row[0].as<std::string>());
    }
    return out;
  });
}

void PgJobQueue::RegisterWorker(const WorkerInfo& worker, double ttl_seconds) {
  WithTransaction("register worker", [&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO workers (owner, orthanc_id, kind, host, threads, gpu, expires_at, host_memory_bytes, gpu_memory_bytes)"
        " VALUES ($1, $2, $3, $4, $5, nullif($6, ''), now() + make_interval(secs => $7), $8, $9)"
        " ON CONFLICT (owner) DO UPDATE SET last_seen = now(), expires_at = excluded.expires_at",
        worker.owner, worker.orthanc_id, worker.kind, worker.host, worker.threads, worker.gpu, ttl_seconds,
        static_cast<int64_t>(worker.host_memory_bytes), static_cast<int64_t>(worker.gpu_memory_bytes));
    return 0;
  });
}

void PgJobQueue::UnregisterWorker(const std::string& owner) {
  WithTransaction("unregister worker", [&](pqxx::work& tx) {
    tx.exec_params("DELETE FROM workers WHERE owner = $1 OR expires_at < now() - interval '1 day'", owner);  // and long gone ones
    return 0;
  });
}

std::vector<WorkerInfo> PgJobQueue::Workers() {
  return WithTransaction("workers", [&](pqxx::work& tx) {
    std::vector<WorkerInfo> out;
    for (const auto& row : tx.exec_params(
             "SELECT owner, orthanc_id, kind, host, threads, coalesce(gpu, ''),"
             " to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
             " to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), expires_at > now(),"
             " host_memory_bytes, gpu_memory_bytes FROM workers WHERE ($1 = '' OR orthanc_id = $1) ORDER BY started_at DESC",
             options_.orthanc_id)) {
      out.push_back({.owner = row[0].as<std::string>(), .orthanc_id = row[1].as<std::string>(),
                     .kind = row[2].as<std::string>(), .host = row[3].as<std::string>(), .gpu = row[5].as<std::string>(),
                     .threads = row[4].as<int>(), .host_memory_bytes = row[9].as<uint64_t>(),
                     .gpu_memory_bytes = row[10].as<uint64_t>(), .started_at = row[6].as<std::string>(),
                     .last_seen = row[7].as<std::string>(), .live = row[8].as<bool>()});
    }
    return out;
  });
}

int PgJobQueue::AdoptUnbound() {
  if (options_.orthanc_id.empty()) return 0;
  return WithTransaction("adopt", [&](pqxx::work& tx) {
    const int jobs = static_cast<int>(
        tx.exec_params("UPDATE jobs j SET orthanc_id = $1 WHERE j.orthanc_id = '' AND NOT EXISTS (SELECT 1 FROM jobs o"
                       " WHERE o.orthanc_id = $1 AND o.idempotency_key = j.idempotency_key)",
                       options_.orthanc_id)
            .affected_rows());
    tx.exec_params("UPDATE intake i SET orthanc_id = $1 WHERE i.orthanc_id = '' AND NOT EXISTS (SELECT 1 FROM intake o"
                   " WHERE o.orthanc_id = $1 AND o.study_id = i.study_id)",
                   options_.orthanc_id);
    tx.exec_params("UPDATE routed r SET orthanc_id = $1 WHERE r.orthanc_id = '' AND NOT EXISTS (SELECT 1 FROM routed o"
                   " WHERE o.orthanc_id = $1 AND o.study_id = r.study_id)",
                   options_.orthanc_id);
    return jobs;
  });
}

std::vector<Job> PgJobQueue::StudyJobs(const std::string& study_id) {
  return WithTransaction("study jobs", [&](pqxx::work& tx) {
    std::vector<Job> out;
    for (const auto& row : tx.exec_params("SELECT " + kJobColumns + " FROM jobs j WHERE j.study_id = $1"
                                          " AND ($2 = '' OR j.orthanc_id = $2) ORDER BY j.id",
                                          study_id, options_.orthanc_id)) {
      out.push_back(JobFromRow(row));
    }
    return out;
  });
}

std::vector<std::string> PgJobQueue::IntakePending() {
  return WithTransaction("intake pending", [&](pqxx::work& tx) {
    std::vector<std::string> out;
    for (const auto& row : tx.exec_params("SELECT study_id FROM intake WHERE orthanc_id = $1 ORDER BY first_seen",
                                          options_.orthanc_id)) {
      out.push_back(row[0].as<std::string>());
    }
    return out;
  });
}

}  // namespace procnode
