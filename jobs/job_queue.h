// The durable job queue in the job database (PostgreSQL).
//
// A job is one (study, rule) pair, identified by its idempotency key: Enqueue() of a key that
// exists returns the existing job. Workers Claim() the highest-priority runnable job with
// FOR UPDATE SKIP LOCKED, which takes a lease for `lease_seconds`; Heartbeat() extends the leases
// an owner holds. A running job whose lease expired (its worker or the whole Orthanc died) is
// claimed again by the next Claim(); once it has used max_attempts it is failed instead. Every
// write after the claim checks that the caller still owns the lease, so a worker that lost its
// lease can never overwrite the new owner's work.
//
// States: queued -> running -> done | failed (| cancelled, later); running -> queued on a
// retryable failure (with exponential backoff) or on Release() at shutdown.
// Thread-safe: each call borrows a pooled connection. Database errors are Error(kUnavailable)
// (connection lost, retryable) or Error(kInternal).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/job_spec.h"

namespace procnode {
namespace pg {
class ConnectionPool;
}  // namespace pg

struct Job {
  int64_t id = 0;
  std::string orthanc_id;             // the Orthanc holding the study ('' for rows before 0006)
  std::string waiting_for;            // a queued job no live worker can run: what it waits for
  std::string idempotency_key, study_id, series_id, rule_id;
  int rule_version = 0;
  JobSpec spec;                       // processor, parameters, device, anonymization, destinations, requirements
  std::string state;
  int priority = 0, attempts = 0, max_attempts = 0;
  std::string lease_owner;            // empty when none
  bool cancel_requested = false;
  double progress = 0;
  std::string progress_message, error, device;
  std::string result_json;            // empty when none
  std::string created_at, started_at, finished_at, updated_at, lease_expires_at, not_before;  // ISO 8601 UTC
  std::string executor = "local";     // local | slurm (fixed at enqueue)
  struct Slurm {
    std::string job_id;       // the batch job now responsible for the job ('' none, 'submitting' while sbatch runs)
    std::string last_job_id;  // the latest batch job
    std::string state, reason, script, submitted_at;
  } slurm;
};

// slurm_job_id of a job reserved for Slurm while sbatch runs (no batch job id yet).
inline constexpr const char* kSlurmSubmitting = "submitting";

// A job handed to Slurm, as its node tracks it.
struct SlurmTracked {
  int64_t id = 0;
  std::string slurm_job_id, slurm_state, slurm_reason;
  double seconds_since_submission = 0;
};

struct JobEvent {
  std::string at, kind, owner, message;
};

// Result objects of a job on their way to one destination.
struct Delivery {
  int64_t id = 0, job_id = 0;
  std::string destination;
  std::vector<std::string> instances;  // Orthanc instance IDs
  std::string state;                   // pending, sending, sent, dead
  int attempts = 0, max_attempts = 0;
  std::string last_error, next_attempt_at, sent_at, updated_at;  // ISO 8601 UTC, '' when none
};

struct EnqueueRequest {
  std::string idempotency_key, study_id, series_id, rule_id;
  int rule_version = 1;
  JobSpec spec;
  int priority = 0;
  int max_attempts = 3;
};

struct EnqueueResult {
  int64_t id = 0;
  bool created = false;  // false: the key existed, nothing was added
};

struct QueueOptions {
  std::chrono::seconds lease{60};
  std::chrono::milliseconds retry_backoff{10'000};  // doubled for each attempt used
  // The Orthanc this queue works for (ProcNode.OrthancId): jobs are enqueued for it, only its jobs
  // are claimed, and intake rows are its own. Empty: every Orthanc's (tools, tests).
  std::string orthanc_id;
  // Whether the workers claiming through this queue have a GPU: jobs that need one are left to
  // workers that do.
  bool has_gpu = false;
  // How long a CPU worker leaves a GPU-preferring job to a live GPU worker before taking it.
  std::chrono::seconds gpu_wait{60};
  // The memory of the machine and of the GPU of the workers claiming through this queue (0:
  // unknown, any job's estimate is taken): jobs estimated to need more are left to others.
  uint64_t host_memory_bytes = 0;
  uint64_t gpu_memory_bytes = 0;
  // The executor of jobs whose spec names none (ProcNode.Executor.Kind).
  std::string default_executor = "local";
};

// A registered worker pool (in a plugin or a standalone procnode worker).
struct WorkerInfo {
  std::string owner, orthanc_id, kind, host, gpu;  // gpu: the device name, '' for none
  int threads = 0;
  uint64_t host_memory_bytes = 0, gpu_memory_bytes = 0;  // 0: unknown
  std::string started_at, last_seen;
  bool live = false;  // renewed within its expected heartbeat
};

// What a failed attempt leads to.
enum class FailOutcome { kRetryScheduled, kFailed, kLeaseLost };

// One saved version of the routing rule set.
struct StoredRuleSet {
  int version = 0;
  std::string body, author, comment, created_at;
};

// A lease this owner still holds, and whether an admin asked to cancel the job.
struct HeldLease {
  int64_t id = 0;
  bool cancel_requested = false;
};

class PgJobQueue {
 public:
  PgJobQueue(std::string dsn, QueueOptions options);
  ~PgJobQueue();
  PgJobQueue(const PgJobQueue&) = delete;
  PgJobQueue& operator=(const PgJobQueue&) = delete;

  EnqueueResult Enqueue(const EnqueueRequest& request);
  // Claims the best runnable local job (Slurm jobs are left to their batch jobs).
  std::optional<Job> Claim(const std::string& owner);
  // Claims one given job (procnode worker --once): when it is queued (whatever its not_before), or
  // running with an expired lease. nullopt when it is not claimable now; Error(kNotFound) when unknown.
  std::optional<Job> ClaimById(int64_t id, const std::string& owner);
  // Slurm executor (node/slurm_executor.h). Up to `limit` queued Slurm jobs of this Orthanc, marked
  // as being submitted (slurm_job_id 'submitting') so that no other node submits them too.
  std::vector<Job> ReserveForSlurm(int limit);
  // The batch job now responsible for a reserved job, and its script.
  void SlurmSubmitted(int64_t id, const std::string& slurm_job_id, const std::string& script);
  // A batch job (or 'submitting': sbatch failed) ended with the job unfinished: see kSlurmEndedSql.
  // Returns the job's new state ("queued", "failed", "cancelled"), "" when the job had moved on.
  std::string SlurmEnded(int64_t id, const std::string& slurm_job_id, const std::string& message, bool retryable);
  // Every job of this Orthanc with a batch job responsible for it.
  std::vector<SlurmTracked> SlurmTrackedJobs();
  // squeue's state and reason for a tracked job (the caller writes them when they changed).
  void SlurmObserved(int64_t id, const std::string& slurm_job_id, const std::string& state, const std::string& reason);
  // Extends the leases `owner` holds on `ids` (the jobs its workers are running now, nothing
  // else: a job whose worker gave up must see its lease expire); returns those it still holds.
  std::vector<HeldLease> Heartbeat(const std::string& owner, const std::vector<int64_t>& ids);
  // Records progress (0..1) and a short message; false when the lease is lost.
  bool Progress(int64_t id, const std::string& owner, double fraction, const std::string& message);
  // Marks the job done with its result (JSON text); false when the lease is lost.
  bool Complete(int64_t id, const std::string& owner, const std::string& result_json,
                const std::string& device);
  FailOutcome Fail(int64_t id, const std::string& owner, const std::string& message, bool retryable);
  // Gives a running job back to the queue without counting the attempt (shutdown).
  bool Release(int64_t id, const std::string& owner, const std::string& reason);
  // Marks a running job cancelled after its worker stopped on request.
  bool MarkCancelled(int64_t id, const std::string& owner);

  // Admin actions. Retry: a failed, cancelled or done job (a re-run), or a running one whose worker
  // is gone (lease expired), is queued again with fresh attempts. Cancel: a queued job, or a
  // running one whose worker is gone, is cancelled at once; a running one is asked to stop (its
  // worker sees it at the next heartbeat). Both throw Error(kNotFound) for an unknown job and
  // Error(kInvalidInput) saying why when the job's state does not allow it.
  Job Retry(int64_t id, const std::string& who);
  Job Cancel(int64_t id, const std::string& who);
  // Queues a done job again (its study was received again and its results are gone); false when
  // the job is not done (already queued or running again). A "rerun" event records `reason`.
  bool Rerun(int64_t id, const std::string& reason);

  // Routing rule sets (versioned; the highest version is active).
  int SaveRuleSet(const std::string& body, const std::string& author, const std::string& comment);
  std::optional<StoredRuleSet> ActiveRuleSet();
  int ActiveRuleSetVersion();  // 0 when none was saved
  std::optional<StoredRuleSet> RuleSetVersion(int version);
  std::vector<StoredRuleSet> RuleSetHistory(int limit);  // newest first, bodies left out

  // Deliveries. AddDelivery: (re)queues the job's objects for a destination (a re-run job replaces
  // its earlier delivery). ClaimDelivery: the next due one (pending and due, or sending with an
  // expired lease), counted as an attempt, leased to `owner`. DeliveryFailed: back to pending after
  // backoff * 2^(attempts-1) seconds, or dead once the attempts are used up; returns the new state.
  // Resend: the job's sent or dead deliveries queued again with fresh attempts (Error(kNotFound) for
  // an unknown job, Error(kInvalidInput) when it has none to resend). Each step is a job event.
  void AddDelivery(int64_t job_id, const std::string& destination, const std::vector<std::string>& instances,
                   int max_attempts);
  std::optional<Delivery> ClaimDelivery(const std::string& owner, int lease_seconds);
  void DeliverySent(int64_t id, const std::string& owner);
  std::string DeliveryFailed(int64_t id, const std::string& owner, const std::string& error, double backoff_seconds);
  std::vector<Delivery> Deliveries(int64_t job_id);
  // The deliveries of several jobs in one query (a job list), by job.
  std::map<int64_t, std::vector<Delivery>> Deliveries(const std::vector<int64_t>& job_ids);
  int Resend(int64_t job_id, const std::string& who);
  std::map<std::string, int64_t> DeliveryCountByState();

  // Intake: stable studies not routed yet, kept across restarts. IntakeSeen records one (keeping
  // when it was first seen) and returns the seconds since; IntakeDone forgets it once routed;
  // IntakePending lists them (oldest first). IntakeDone also records the study as routed.
  double IntakeSeen(const std::string& study_id);
  void IntakeDone(const std::string& study_id);
  std::vector<std::string> IntakePending();
  // Reconciliation: the studies among `study_ids` that were never routed (IntakeDone records them).
  std::vector<std::string> NotRouted(const std::vector<std::string>& study_ids);
  // Every job of a study, oldest first.
  std::vector<Job> StudyJobs(const std::string& study_id);
  // Rows from before several Orthancs could share the database ('') become this queue's Orthanc's;
  // returns how many jobs were adopted. Done by the Orthanc node at start.
  int AdoptUnbound();

  // Worker registrations: a pool registers when it starts and again at every heartbeat (its row
  // lives `ttl_seconds` unless renewed), and removes it when it stops (rows gone for a day go too).
  // Workers: newest first.
  void RegisterWorker(const WorkerInfo& worker, double ttl_seconds);
  void UnregisterWorker(const std::string& owner);
  std::vector<WorkerInfo> Workers();

  std::optional<Job> Get(int64_t id);
  std::vector<Job> List(const std::optional<std::string>& state, int limit);
  std::vector<JobEvent> Events(int64_t id);
  std::map<std::string, int64_t> CountByState();

  // What the metrics show of the database, read in one transaction: jobs by state (this queue's
  // Orthanc, or all when it names none), the age of the oldest queued job, deliveries by
  // destination and state.
  struct Gauges {
    std::map<std::string, int64_t> jobs;
    double oldest_queued_seconds = 0;
    std::map<std::pair<std::string, std::string>, int64_t> deliveries;  // (destination, state) -> count
  };
  Gauges ReadGauges();

  const QueueOptions& options() const { return options_; }

 private:
  template <typename F>
  auto WithTransaction(const char* what, F&& body);

  QueueOptions options_;
  std::unique_ptr<pg::ConnectionPool> pool_;  // libpqxx stays in job_queue.cc and pg/
};

// Valid job state names, for filters: queued, running, done, failed, cancelled.
bool IsJobState(const std::string& state);

}  // namespace procnode
