// One procnode node: configuration, job queue, routing rules, intake thread, worker pool and
// deliveries, beside one Orthanc reached through the OrthancRest port (in the plugin: the SDK; in
// tests: an in-memory fake). Knows nothing of the Orthanc SDK.
//
// The StableStudy callback only calls OnStableStudy(), which puts the study ID in an in-memory
// intake list and returns at once. The intake thread reads the study's attributes through Orthanc
// (one instance per series, plus the calling and called AE titles), evaluates the active rule set
// (the newest saved version, picked up without restart; the built-in default until one is saved)
// and enqueues the planned jobs idempotently, each recording its rule id and rule-set version;
// procnode's own result series are not inputs, so storing results never creates jobs. Workers run
// the pipeline. StartWork() runs at OrthancStarted, StopWork() at OrthancStopped or Finalize
// (running jobs are released back to the queue). Thread-safe.
#pragma once

#include <condition_variable>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "anonymizer/deidentify.h"
#include "core/audit.h"
#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "jobs/worker_pool.h"
#include "node/metrics.h"
#include "orthanc/orthanc_rest.h"
#include "processors/processor.h"
#include "processors/volume_stats.h"
#include "routing/rule_set.h"
#include "routing/rules.h"

namespace procnode {

struct SeriesWatch;  // a series watched for early start (node.cc)

// Who makes a REST request, and whether anything verified it (Node::Identify).
struct Caller {
  std::string name = "anonymous";
  bool verified = false;
  // "user \"NAME\"" or "an unverified caller", for messages and logs.
  std::string Describe() const;
};

class Node {
 public:
  // Applies the job database migrations (connect timeout and statement timeout from the
  // configuration), checks and migrates the PHI vault when one is configured, and saves the
  // RulesFile's rule set when none is saved yet. Throws Error when the job database is unreachable
  // or newer, or the RulesFile is unreadable or invalid.
  // `rest` is the Orthanc this node serves; it must outlive the node.
  Node(NodeConfig config, OrthancRest& rest);
  ~Node();

  void StartWork();
  void StopWork();
  // A standalone worker: only the worker pool runs (no intake, no deliveries).
  void StartWorkersOnly();
  // Claims job `id` and runs it in this thread (procnode worker --once); its state afterwards.
  // Error(kNotFound) for an unknown job; "not claimable" when it is neither queued nor orphaned.
  std::string RunOneJob(int64_t id);
  // Asks running jobs to stop and be released (SIGTERM), from any thread.
  void RequestStop();
  void OnStableStudy(const std::string& study_id);
  // A new series began arriving (Orthanc's NewSeries). Watched until it is complete by its own
  // count (AnnouncedInstanceCount): then its series-level rules start at once, before the study
  // is stable. Returns at once (ProcNode.EarlyStart false: does nothing).
  void OnNewSeries(const std::string& series_id);

  // The processors this node runs (built-ins; external tools in a later issue).
  const ProcessorRegistry& Processors() const { return processors_; }
  nlohmann::json Status();
  // GET /procnode/metrics: the Prometheus text exposition (node/metrics.h).
  std::string MetricsText();
  // The main gauges for Orthanc's own /tools/metrics-prometheus (name, value).
  std::vector<std::pair<std::string, float>> MainGauges();
  nlohmann::json Jobs(const std::optional<std::string>& state, int limit);
  // The registered worker pools of this node's Orthanc (in plugins and standalone), live or not.
  nlohmann::json Workers();
  std::optional<nlohmann::json> JobDetail(int64_t id);
  // A file the job kept besides its DICOM results (an external tool's derived image or log, listed
  // in its result's "files"), from WorkDirectory/jobs/<id>/. Error(kNotFound) naming the job and the
  // file when the job kept no such file here (a standalone worker keeps them on its own host).
  std::string JobFile(int64_t id, const std::string& name);
  nlohmann::json RetryJob(int64_t id, const std::string& who);
  nlohmann::json CancelJob(int64_t id, const std::string& who);
  // The original identity behind a pseudonym, for verified users in ProcNode.VaultRoles only;
  // refusals (an unverified caller included) and grants are audited in the vault. When refused,
  // *forbidden is set and the answer's "error" says why.
  nlohmann::json Reidentify(const nlohmann::json& body, const Caller& caller, bool* forbidden);
  // The job's sent or dead-lettered deliveries queued again (admin action).
  nlohmann::json ResendJob(int64_t id, const std::string& who);

  // Routing rules (REST /procnode/rules...). Writes throw Error(kInvalidInput) with the
  // validation errors as JSON text in the message when the rule set is refused.
  nlohmann::json Rules();
  nlohmann::json SaveRules(const std::string& body, const std::string& author, const std::string& comment);
  nlohmann::json RulesHistory();
  nlohmann::json RulesVersion(int version);
  nlohmann::json RollbackRules(int version, const std::string& author);
  nlohmann::json ValidateRules(const std::string& body);
  // Evaluates the active rule set (or `rules_body` when given) on an Orthanc study: which rules
  // fire, each condition's outcome, and the jobs that would be created. Enqueues nothing.
  nlohmann::json DryRun(const std::string& study_id, const std::string& rules_body);
  // A rule set sent for trying (dry-run, replay): Error(kInvalidInput) with every fault when invalid.
  RuleSet ParseDraft(const std::string& rules_body);
  // The draft rule set (JSON text) and the current one evaluated side by side over the studies
  // Orthanc holds, most recently received first: the last `last` of them, or those received
  // between `from` and `to` (YYYYMMDD, inclusive, either may be empty) among the newest
  // kReplayScanLimit. Per study which rules fire now and with the draft, and the jobs the draft
  // would create, no longer create or create differently. Nothing is enqueued.
  nlohmann::json Replay(const std::string& rules_body, int last, const std::string& from, const std::string& to);
  static constexpr int kReplayScanLimit = 5000;

  // The caller, from what was verified only: the trusted header's value (ProcNode.TrustedUserHeader,
  // set by an authorization plugin or proxy) or the Basic user where Orthanc's authentication is on
  // (Orthanc checked the password before the plugin sees the request). Anything else, an
  // X-Procnode-Author header or a Basic header Orthanc did not check included, is unverified.
  Caller Identify(const std::optional<std::string>& basic_user, const std::optional<std::string>& trusted_header) const;
  const std::string& TrustedUserHeader() const { return config_.trusted_user_header; }
  // One event to the audit trail (ProcNode.Audit), from any thread.
  void Audit(const AuditEvent& event) { audit_.Record(event); }
  // Why `caller` may not change rules and jobs, or nullopt when it may: verified users in
  // ProcNode.Admins (every verified user when it is empty); unverified callers only where
  // ProcNode.AllowAnonymousAdministration (a lab setting) is true.
  std::optional<std::string> AdministrationRefusal(const Caller& caller) const;
  // The Orthanc series as a gzip-compressed NIfTI-1 file: part `part` (1-based; echoes, phase,
  // field map and evenly spaced parts are separate images). Error(kNotFound) for an unknown
  // series or part, Error(kUnsupported) for what the converter refuses.
  std::string SeriesNifti(const std::string& series_id, int part = 1);

 private:
  RuleVocabulary Vocabulary() const;
  // WorkDirectory/jobs/<id>: where a job keeps its files besides its DICOM results.
  std::string JobFilesFolder(int64_t id) const;
  // A job's de-identification (its route's project and options, the node's secret and pixel rules).
  DeidentifyOptions AnonymizationOf(const Job& job) const;
  void DeliverToBids(const Delivery& delivery, const NodeConfig::Destination& destination, const std::string& what);  // the rule language for this node's processors and destinations
  void IntakeLoop();
  // Sends due deliveries (C-STORE through Orthanc's /modalities/{alias}/store), one at a time.
  void DeliveryLoop();
  void Deliver(const Delivery& delivery);
  void Intake(const std::string& study_id);
  // (Re)schedules a study's next look at `due`, replacing an earlier one. Caller holds mutex_.
  void DeferLocked(const std::string& study_id, std::chrono::steady_clock::time_point due);
  // Queues every stable study Orthanc holds that was never routed (and the intake rows left from
  // before a restart). Throws Error when Orthanc or the job database cannot be read.
  void Reconcile();
  // A done job whose study was received again: run again when its results are gone from Orthanc.
  void RerunIfResultsGone(int64_t job_id, const std::string& study_id);
  JobOutcome RunJob(JobContext& context);
  JobOutcome RunJobMeasured(JobContext& context);
  // Enqueues planned jobs of a study (requirements estimated, the same key as ever); whether one
  // was new. Throws Error when the job database fails.
  bool EnqueuePlanned(const std::string& study_id, const StudyAttributes& study, const std::vector<PlannedJob>& planned,
                      const std::string& why);
  // Polls the watched series (a few times a second) and starts the complete ones' jobs.
  void SeriesWatchLoop();
  // One look at a watched series; true when it needs no more watching.
  bool LookAtSeries(const std::string& series_id, SeriesWatch& watch);
  // The Slurm executor's loop and one pass of it: batch jobs that ended or wait too long are
  // mapped to the retry policy, then queued Slurm jobs are submitted while there is room.
  void StartSlurmLoop();  // when Slurm is configured and this process submits; once
  void SlurmLoop();
  void SlurmPass();
  // The active rule set, reloaded when a newer version was saved (by any node).
  std::shared_ptr<const RuleSet> CurrentRules();
  StudyAttributes StudyForRouting(const std::string& study_id);

  NodeConfig config_;
  AuditLog audit_;
  Metrics metrics_;
  ProcessorRegistry processors_;
  OrthancRest& rest_;
  GpuStatus gpu_;
  PgJobQueue queue_;
  std::unique_ptr<WorkerPool> pool_;
  std::mutex mutex_;
  std::condition_variable intake_wake_;
  std::deque<std::string> intake_;
  // Studies waiting to be complete: when they were first seen complete-looking, and when to look again.
  std::multimap<std::chrono::steady_clock::time_point, std::string> deferred_;
  // Intake's view of the job database: an outage keeps every study (retried with backoff) and is
  // followed by a reconciliation with Orthanc's studies.
  bool reconcile_needed_ = true;
  bool waiting_for_database_ = false;
  std::string intake_problem_;
  std::map<std::string, int> intake_attempts_;
  nlohmann::json vault_status_ = nullptr;
  bool stopping_ = false;
  std::thread intake_thread_;
  std::thread watch_thread_;
  std::condition_variable watch_wake_;
  std::map<std::string, std::shared_ptr<SeriesWatch>> watched_;  // guarded by mutex_
  std::thread delivery_thread_;
  std::condition_variable delivery_wake_;
  // The Slurm executor (node/slurm_executor.h): submits this Orthanc's Slurm jobs and follows them.
  std::thread slurm_thread_;
  std::condition_variable slurm_wake_;
  std::string slurm_problem_;  // the last pass's error, for /procnode/status ("" when fine); guarded by mutex_
  std::mutex rules_mutex_;
  std::shared_ptr<const RuleSet> rules_;
  int rules_version_ = -1;
};

}  // namespace procnode
