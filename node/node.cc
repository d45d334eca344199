#include "node/node.h"

#include <algorithm>
#include <map>
#include <set>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "anonymizer/anonymizing_source.h"
#include "anonymizer/vault.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "dicom/folder_source.h"
#include "jobs/job_json.h"
#include "nifti/series_to_nifti.h"
#include "orthanc/orthanc_study_source.h"
#include "pg/dsn.h"
#include "pg/migrations.h"
#include "pipeline/processing_pipeline.h"
#include "pipeline/routing_inputs.h"
#include "processors/builtin.h"
#include "processors/external/external_tool.h"
#include "processors/external/sandbox.h"
#include "processors/processor.h"
#include "node/slurm_executor.h"
#include "routing/rules.h"

namespace procnode {
namespace {

// The configuration with the database DSNs given a connect and a statement timeout.
NodeConfig WithTimeouts(NodeConfig config) {
  config.database = WithSessionDefaults(config.database, config.database_connect_timeout_seconds,
                                        config.database_statement_timeout_seconds);
  if (!config.phi_vault.empty()) {
    config.phi_vault = WithSessionDefaults(config.phi_vault, config.database_connect_timeout_seconds,
                                           config.database_statement_timeout_seconds);
  }
  return config;
}

// The machine's physical memory (0 when unknown).
uint64_t HostMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace

std::string Caller::Describe() const { return verified ? "user \"" + name + "\"" : "an unverified caller"; }

Node::Node(NodeConfig config, OrthancRest& rest)
    : config_(WithTimeouts(std::move(config))),
      audit_(config_.audit_target),
      rest_(rest),
      gpu_(ProbeGpu()),
      queue_(config_.database,
             QueueOptions{.lease = std::chrono::seconds(config_.lease_seconds),
                          .retry_backoff = std::chrono::milliseconds(
                              static_cast<int64_t>(config_.retry_backoff_seconds * 1000)),
                          .orthanc_id = config_.orthanc_id,
                          .has_gpu = gpu_.found && config_.gpu != "cpu",
                          .gpu_wait = std::chrono::seconds(config_.gpu_wait_seconds),
                          .host_memory_bytes = HostMemoryBytes(),
                          .gpu_memory_bytes = gpu_.found && config_.gpu != "cpu" ? gpu_.memory_bytes : 0,
                          .default_executor = config_.executor.kind}) {
  RegisterBuiltinProcessors(processors_);
  if (!config_.tools_directory.empty()) {
    // A bad manifest leaves that tool out (rules naming it are refused), not the node.
    for (const auto& warning : RegisterTools(processors_, config_.tools_directory, config_.work_directory)) {
      Log(LogLevel::kError, "external tools: " + warning);
    }
    Log(LogLevel::kInfo, "external tools: " + std::to_string(processors_.All().size()) + " processor(s) with the tools of " +
                             config_.tools_directory + " (sandbox: " + (BwrapPath().empty() ? "bwrap missing: tools will fail"
                                                                                             : BwrapPath()) + ")");
  }
  const auto kinds = ResultKinds();
  for (const auto& [kind, number] : config_.result_series_numbers) {
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      std::string known;
      for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
      throw Error(ErrorCode::kInvalidInput, "ProcNode.ResultSeriesNumbers: no result kind \"" + kind + "\" (kinds: " + known + ")");
    }
  }
  Log(LogLevel::kInfo, "job database: connecting to " + DescribeDsn(config_.database) + " (gives up after " +
                           std::to_string(config_.database_connect_timeout_seconds) + " s; statements after " +
                           std::to_string(config_.database_statement_timeout_seconds) + " s)");
  const auto report = ApplyMigrations(config_.database, JobDbMigrations());
  Log(LogLevel::kInfo, "job database schema at version " + std::to_string(report.to_version) +
                           (report.applied.empty() ? " (up to date)"
                                                   : " (applied " + std::to_string(report.applied.size()) + ")"));
  if (!config_.standalone_worker) {
    if (const int adopted = queue_.AdoptUnbound(); adopted > 0) {
      Log(LogLevel::kInfo, std::to_string(adopted) + " job(s) from before several Orthancs could share the job database "
                           "now belong to Orthanc \"" + config_.orthanc_id + "\"");
    }
  }
  Log(LogLevel::kInfo, std::string("GPU: ") +
                           (gpu_.found ? gpu_.name : "none (" + gpu_.reason + "), CPU implementations run"));
  WorkerPoolOptions options;
  options.workers = config_.workers;
  options.owner = MakeOwnerId(config_.node_name);
  options.poll_interval = std::chrono::milliseconds(static_cast<int64_t>(config_.poll_seconds * 1000));
  options.heartbeat_interval = std::chrono::seconds(config_.heartbeat_seconds);
  options.kind = config_.standalone_worker ? "standalone" : "plugin";
  options.orthanc_id = config_.orthanc_id;
  options.host = config_.node_name;
  options.gpu = gpu_.found && config_.gpu != "cpu" ? gpu_.name : "";
  options.host_memory_bytes = queue_.options().host_memory_bytes;
  options.gpu_memory_bytes = options.gpu.empty() ? 0 : gpu_.memory_bytes;
  pool_ = std::make_unique<WorkerPool>(queue_, [this](JobContext& c) { return RunJobMeasured(c); }, options);

  // The PHI vault, when configured: reachable and migrated now, so that the first anonymized job or
  // re-identification does not find it missing; a vault that is down delays only those (status says so).
  if (!config_.phi_vault.empty()) {
    const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
    vault_status_ = {{"configured", true}, {"server", DescribeDsn(config_.phi_vault)}};
    try {
      if (keys == nullptr || *keys == '\0') {
        throw Error(ErrorCode::kInvalidInput, "its keys are not in the environment (PROCNODE_VAULT_KEYS)");
      }
      Log(LogLevel::kInfo, "PHI vault: connecting to " + DescribeDsn(config_.phi_vault));
      PhiVault(config_.phi_vault, ParseVaultKeys(keys)).Migrate();
      vault_status_["ok"] = true;
      Log(LogLevel::kInfo, "PHI vault: reachable and migrated");
    } catch (const Error& e) {
      vault_status_["ok"] = false;
      vault_status_["error"] = e.what();
      Log(LogLevel::kError, std::string("PHI vault: ") + e.what() +
                                ": anonymized routes and re-identification wait until it is fixed");
    }
  } else {
    vault_status_ = {{"configured", false}};
  }

  // RulesFile seeds the rule set once: a rule set saved in the job database (by an admin, or by an
  // earlier start from this file) always wins, so edits made on the admin page are never undone.
  if (!config_.rules_file.empty() && !config_.standalone_worker) {
    const int active = queue_.ActiveRuleSetVersion();
    if (active > 0) {
      Log(LogLevel::kInfo, "ProcNode.RulesFile " + config_.rules_file + " not loaded: rule set version " +
                               std::to_string(active) + " is saved in the job database and wins");
    } else {
      try {
        const auto saved = SaveRules(ReadFileBytes(config_.rules_file), "RulesFile", "loaded from " + config_.rules_file);
        Log(LogLevel::kInfo, "ProcNode.RulesFile " + config_.rules_file + " saved as rule set version " +
                                 std::to_string(saved["version"].get<int>()));
      } catch (const Error& e) {
        throw Error(ErrorCode::kInvalidInput, "ProcNode.RulesFile " + config_.rules_file + ": " + e.what());
      }
    }
  }
  // The configuration it starts with, without secrets (DSNs without passwords, no keys).
  auto list = [](const std::vector<std::string>& names) {
    std::string text;
    for (const auto& n : names) text += (text.empty() ? "" : ",") + n;
    return text.empty() ? std::string("none") : text;
  };
  audit_.Record({.who = "procnode", .action = "node.start", .object = "Orthanc " + config_.orthanc_id, .outcome = "success",
                 .detail = std::string(config_.standalone_worker ? "standalone worker" : "Orthanc node") + " " +
                           pool_->owner() + ", procnode " + kVersion + "; job database " + DescribeDsn(config_.database) +
                           "; PHI vault " + (config_.phi_vault.empty() ? std::string("none") : DescribeDsn(config_.phi_vault)) +
                           "; workers " + std::to_string(config_.workers) + "; gpu " + config_.gpu + "; identity " +
                           (!config_.trusted_user_header.empty() ? "trusted header" : config_.orthanc_authentication ? "Orthanc authentication" : "none") +
                           (config_.allow_anonymous_administration ? " (anonymous administration allowed)" : "") +
                           "; admins " + list(config_.admins) + "; vault roles " + list(config_.vault_roles) +
                           "; destinations " + list(config_.destinations)});
}

Node::~Node() { StopWork(); }

void Node::StartWork() {
  {
    std::lock_guard lock(mutex_);
    if (intake_thread_.joinable()) return;
    stopping_ = false;
    reconcile_needed_ = true;  // studies that became stable while no node listened are found first
  }
  intake_thread_ = std::thread([this] { IntakeLoop(); });
  if (config_.early_start) watch_thread_ = std::thread([this] { SeriesWatchLoop(); });
  delivery_thread_ = std::thread([this] { DeliveryLoop(); });
  StartSlurmLoop();
  pool_->Start();
  Log(LogLevel::kInfo, "started " + std::to_string(config_.workers) + " worker(s) as " + pool_->owner());
}

void Node::StartWorkersOnly() {
  StartSlurmLoop();  // a standalone worker on a Slurm submit host submits its Orthanc's Slurm jobs
  pool_->Start();
  Log(LogLevel::kInfo, "worker: " + std::to_string(config_.workers) + " worker thread(s) as " + pool_->owner());
}

std::string Node::RunOneJob(int64_t id) {
  const auto job = queue_.ClaimById(id, pool_->owner());
  if (!job) return "not claimable";
  Log(LogLevel::kInfo, "worker: running job " + std::to_string(id) + " as " + pool_->owner());
  return pool_->RunClaimed(*job);
}

void Node::RequestStop() { pool_->RequestStop(); }

void Node::StopWork() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  intake_wake_.notify_all();
  delivery_wake_.notify_all();
  watch_wake_.notify_all();
  slurm_wake_.notify_all();
  if (intake_thread_.joinable()) intake_thread_.join();
  if (slurm_thread_.joinable()) slurm_thread_.join();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (delivery_thread_.joinable()) delivery_thread_.join();
  pool_->Stop();
}

void Node::OnStableStudy(const std::string& study_id) {
  {
    std::lock_guard lock(mutex_);
    if (std::find(intake_.begin(), intake_.end(), study_id) == intake_.end()) intake_.push_back(study_id);
  }
  intake_wake_.notify_one();
}

void Node::IntakeLoop() {
  auto reconcile_backoff = std::chrono::seconds(1);
  auto next_reconcile = std::chrono::steady_clock::now();
  while (true) {
    std::string study_id;
    bool reconcile = false;
    {
      std::unique_lock lock(mutex_);
      // Wake for a new study, when the next deferred (waiting) study is due for another look, or
      // when a reconciliation is due.
      auto ready = [this, &next_reconcile] {
        const auto now = std::chrono::steady_clock::now();
        return stopping_ || !intake_.empty() || (reconcile_needed_ && next_reconcile <= now) ||
               (!deferred_.empty() && deferred_.begin()->first <= now);
      };
      auto until = std::chrono::steady_clock::time_point::max();
      if (!deferred_.empty()) until = deferred_.begin()->first;
      if (reconcile_needed_) until = std::min(until, next_reconcile);
      if (until == std::chrono::steady_clock::time_point::max()) {
        intake_wake_.wait(lock, ready);
      } else {
        intake_wake_.wait_until(lock, until, ready);
      }
      if (stopping_) return;
      const auto now = std::chrono::steady_clock::now();
      if (reconcile_needed_ && next_reconcile <= now) {
        reconcile = true;
      } else if (!intake_.empty()) {
        study_id = intake_.front();
        intake_.pop_front();
      } else if (!deferred_.empty() && deferred_.begin()->first <= now) {
        study_id = deferred_.begin()->second;
        deferred_.erase(deferred_.begin());
      } else {
        continue;
      }
    }
    if (reconcile) {
      try {
        Reconcile();
        reconcile_backoff = std::chrono::seconds(1);
      } catch (const Error& e) {
        Log(LogLevel::kWarning, std::string("intake: cannot reconcile Orthanc's studies yet (") + e.what() + "), retrying in " +
                                    std::to_string(reconcile_backoff.count()) + " s");
        next_reconcile = std::chrono::steady_clock::now() + reconcile_backoff;
        reconcile_backoff = std::min(reconcile_backoff * 2, std::chrono::seconds(30));
      } catch (const std::exception& e) {  // a defect, not an outage: logged, and the thread lives
        Log(LogLevel::kError, std::string("intake: reconciliation failed (internal error: ") + e.what() + ")");
        next_reconcile = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      }
      continue;
    }
    try {
      Intake(study_id);
      std::lock_guard lock(mutex_);
      intake_attempts_.erase(study_id);
      if (waiting_for_database_) {
        // The database is back: studies that became stable meanwhile and whose StableStudy was
        // lost with it (an Orthanc restart in between) are found by a reconciliation.
        waiting_for_database_ = false;
        intake_problem_.clear();
        reconcile_needed_ = true;
        // Every study that waited for the database is due now, not at the end of its backoff.
        for (auto it = deferred_.begin(); it != deferred_.end();) {
          if (intake_attempts_.contains(it->second)) {
            if (std::find(intake_.begin(), intake_.end(), it->second) == intake_.end()) intake_.push_back(it->second);
            it = deferred_.erase(it);
          } else {
            ++it;
          }
        }
        Log(LogLevel::kInfo, "intake: the job database answers again; reconciling Orthanc's studies");
      }
    } catch (const Error& e) {
      if (!e.retryable()) {
        Log(LogLevel::kError, "study " + study_id + ": not routed (" + e.what() + ")");
        continue;
      }
      // A database or Orthanc outage must not lose the study: it waits and is tried again, with
      // backoff up to 10 s, for as long as the outage lasts; once one gets through, all the others
      // are tried at once.
      std::lock_guard lock(mutex_);
      const int attempt = ++intake_attempts_[study_id];
      const auto delay = std::chrono::seconds(std::min(10, 1 << std::min(attempt - 1, 4)));
      const bool database = std::string(e.what()).rfind("job database", 0) == 0;
      if (database && !waiting_for_database_) {
        Log(LogLevel::kWarning, std::string("intake: waiting for the job database (") + e.what() +
                                    "); stable studies are kept and routed once it answers");
      }
      waiting_for_database_ = waiting_for_database_ || database;
      intake_problem_ = e.what();
      Log(attempt == 1 || attempt % 10 == 0 ? LogLevel::kWarning : LogLevel::kInfo,
          "study " + study_id + ": not enqueued yet (" + e.what() + "), attempt " + std::to_string(attempt) +
              ", next in " + std::to_string(delay.count()) + " s");
      DeferLocked(study_id, std::chrono::steady_clock::now() + delay);
    } catch (const std::exception& e) {  // a defect, not an outage: logged, and the thread lives
      Log(LogLevel::kError, "study " + study_id + ": not routed (internal error: " + e.what() + ")");
    }
  }
}

void Node::DeferLocked(const std::string& study_id, std::chrono::steady_clock::time_point due) {
  for (auto it = deferred_.begin(); it != deferred_.end();) it = it->second == study_id ? deferred_.erase(it) : std::next(it);
  deferred_.emplace(due, study_id);
}

void Node::Reconcile() {
  const auto listed = nlohmann::json::parse(rest_.Get("/studies"), nullptr, false);
  if (!listed.is_array()) throw Error(ErrorCode::kUnavailable, "Orthanc: /studies did not answer a list");
  std::vector<std::string> all;
  for (const auto& id : listed) {
    if (id.is_string()) all.push_back(id.get<std::string>());
  }
  std::vector<std::string> candidates = queue_.IntakePending();  // left from before a restart
  constexpr std::size_t kChunk = 2000;
  for (std::size_t i = 0; i < all.size(); i += kChunk) {
    const std::vector<std::string> chunk(all.begin() + i, all.begin() + std::min(all.size(), i + kChunk));
    for (auto& id : queue_.NotRouted(chunk)) candidates.push_back(std::move(id));
  }
  int queued = 0;
  for (const auto& id : candidates) {
    // Only stable studies: one still receiving gets its StableStudy event later.
    try {
      const auto study = nlohmann::json::parse(rest_.Get("/studies/" + id), nullptr, false);
      if (!study.is_object() || !study.value("IsStable", false)) continue;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) continue;
      throw;
    }
    std::lock_guard lock(mutex_);
    const bool deferred = std::any_of(deferred_.begin(), deferred_.end(), [&](const auto& d) { return d.second == id; });
    if (!deferred && std::find(intake_.begin(), intake_.end(), id) == intake_.end()) {
      intake_.push_back(id);
      ++queued;
    }
  }
  {
    std::lock_guard lock(mutex_);
    reconcile_needed_ = false;
  }
  Log(LogLevel::kInfo, "intake: reconciled " + std::to_string(all.size()) + " study(ies) in Orthanc; " +
                           std::to_string(queued) + " stable and not routed yet, routed now");
}

void Node::RerunIfResultsGone(int64_t job_id, const std::string& study_id) {
  const auto job = queue_.Get(job_id);
  if (!job || job->state != "done") return;
  // The results' Orthanc IDs are hashes of UIDs that derive from the job: the same study sent
  // again has the same job, and its results are either still stored (nothing to do: a study
  // stable twice without change, or made unstable by the results themselves) or gone with a
  // deletion (run again, and the results come back under the same UIDs).
  const auto result = nlohmann::json::parse(job->result_json, nullptr, false);
  if (!result.is_object() || !result.contains("results") || !result["results"].is_array() || result["results"].empty()) return;
  int missing = 0;
  for (const auto& stored : result["results"]) {
    if (!stored.is_object() || !stored.contains("stored") || !stored["stored"].is_string()) continue;
    try {
      rest_.Get("/instances/" + stored["stored"].get<std::string>());
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kNotFound) throw;
      ++missing;
    }
  }
  if (missing == 0) return;
  if (queue_.Rerun(job_id, "study " + study_id + " received again; " + std::to_string(missing) +
                               " of its result object(s) no longer in Orthanc")) {
    Log(LogLevel::kInfo, "study " + study_id + ": received again and job " + std::to_string(job_id) +
                             "'s results are gone: the job runs again");
    pool_->Wake();
  }
}

StudyAttributes Node::StudyForRouting(const std::string& study_id) {
  OrthancStudySource source(rest_);
  StudyAttributes study = ReadStudyAttributes(source, study_id);
  for (const auto& series : study.series) {
    if (series.produced_by_procnode || series.instance_ids.empty()) continue;
    study.calling_aet = source.InstanceMetadata(series.instance_ids.front(), "RemoteAET");
    study.called_aet = source.InstanceMetadata(series.instance_ids.front(), "CalledAET");
    break;
  }
  return study;
}

void Node::Intake(const std::string& study_id) {
  // Recorded until routed, so that a restart in between loses nothing; the wait counts from the
  // first time the study was seen stable.
  const double waited = queue_.IntakeSeen(study_id);
  StudyAttributes study;
  try {
    study = StudyForRouting(study_id);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) {  // deleted since it became stable
      queue_.IntakeDone(study_id);
      return;
    }
    throw;
  }
  if (!study.HasInputSeries()) {  // only procnode results in this study: nothing to do
    queue_.IntakeDone(study_id);
    return;
  }
  const auto rules = CurrentRules();
  // Complete, not merely quiet: series that say they have more images, and rules waiting for a
  // series, hold the study back (up to their maximum wait), looked at again every few seconds.
  const auto now = std::chrono::steady_clock::now();
  const auto incomplete = IncompleteSeries(study);
  const auto evaluations = EvaluateRuleSet(*rules, study, waited);
  const bool rule_waiting = std::any_of(evaluations.begin(), evaluations.end(), [](const auto& e) { return e.waiting; });
  const bool series_waiting = !incomplete.empty() && waited < config_.completeness_max_wait_seconds;
  if (rule_waiting || series_waiting) {
    Log(LogLevel::kInfo, "study " + study_id + ": waiting to be complete (" +
                             (series_waiting ? std::to_string(incomplete.size()) + " series short of their image count"
                                             : "a rule waits for a series") +
                             ", waited " + std::to_string(static_cast<int>(waited)) + " s)");
    std::lock_guard lock(mutex_);
    DeferLocked(study_id, now + std::chrono::seconds(2));
    return;
  }
  if (!incomplete.empty()) {
    Log(LogLevel::kWarning, "study " + study_id + ": " + std::to_string(incomplete.size()) +
                                " series still short of their image count after " +
                                std::to_string(config_.completeness_max_wait_seconds) + " s: routed as it is");
  }
  const auto planned = PlanJobs(*rules, study, evaluations);
  if (planned.empty()) {
    Log(LogLevel::kInfo, "study " + study_id + ": no rule of rule set version " + std::to_string(rules->version) + " fired");
    queue_.IntakeDone(study_id);
    return;
  }
  EnqueuePlanned(study_id, study, planned, "");
  queue_.IntakeDone(study_id);
}

bool Node::EnqueuePlanned(const std::string& study_id, const StudyAttributes& study, const std::vector<PlannedJob>& planned,
                          const std::string& why) {
  bool created = false;
  for (const auto& job : planned) {
    JobSpec spec = job.rule.spec;
    spec.requirements = EstimateRequirements(spec, processors_.Find(spec.processor), study, job.series_id);
    const auto result = queue_.Enqueue({.idempotency_key = job.idempotency_key,
                                        .study_id = study_id,
                                        .series_id = job.series_id,
                                        .rule_id = job.rule.id,
                                        .rule_version = job.rule.version,
                                        .spec = spec,
                                        .priority = job.priority,
                                        .max_attempts = config_.max_attempts});
    if (!result.created) RerunIfResultsGone(result.id, study_id);  // received again after a deletion?
    Log(LogLevel::kInfo, "study " + study_id + ": " +
                             (result.created ? "enqueued job " : "already has job ") + std::to_string(result.id) +
                             " (rule " + job.rule.id + "@" + std::to_string(job.rule.version) + ", " +
                             std::to_string(job.input_instances) + " instances" + (why.empty() ? "" : "; " + why) + ")");
    created = created || result.created;
  }
  if (created) pool_->Wake();
  return created;
}

// A series watched for early start: its study, what it announces, and its count at the last look.
struct SeriesWatch {
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  std::string study_id;
  bool looked_at_attributes = false;
  std::size_t expected = 0;
  std::size_t last_count = 0;
};

void Node::OnNewSeries(const std::string& series_id) {
  if (!config_.early_start) return;
  {
    std::lock_guard lock(mutex_);
    watched_.emplace(series_id, std::make_shared<SeriesWatch>());
  }
  watch_wake_.notify_one();
}

void Node::SeriesWatchLoop() {
  const auto poll = std::chrono::milliseconds(static_cast<int64_t>(config_.early_start_poll_seconds * 1000));
  while (true) {
    std::vector<std::pair<std::string, std::shared_ptr<SeriesWatch>>> due;
    {
      std::unique_lock lock(mutex_);
      watch_wake_.wait(lock, [this] { return stopping_ || !watched_.empty(); });
      if (stopping_) return;
      watch_wake_.wait_for(lock, poll, [this] { return stopping_; });
      if (stopping_) return;
      due.assign(watched_.begin(), watched_.end());
    }
    for (const auto& [series_id, watch] : due) {
      bool done = true;
      try {
        // A series that never completes by its count is left to StableAge after the longest wait.
        done = std::chrono::steady_clock::now() - watch->since > std::chrono::seconds(config_.completeness_max_wait_seconds) ||
               LookAtSeries(series_id, *watch);
      } catch (const Error& e) {
        // Nothing is lost: the study is routed when it is stable.
        Log(LogLevel::kInfo, "series " + series_id + ": no early start (" + e.what() + "); routed when the study is stable");
      } catch (const std::exception& e) {
        Log(LogLevel::kWarning, "series " + series_id + ": no early start (internal error: " + e.what() +
                                    "); routed when the study is stable");
      }
      if (done) {
        std::lock_guard lock(mutex_);
        watched_.erase(series_id);
      }
    }
  }
}

bool Node::LookAtSeries(const std::string& series_id, SeriesWatch& watch) {
  OrthancStudySource source(rest_);
  std::string study_id;
  const SeriesRef series = source.GetSeries(series_id, &study_id);
  if (series.produced_by_procnode) return true;  // procnode's results are never inputs
  const std::size_t count = series.instance_ids.size();
  if (count == 0) return false;
  if (!watch.looked_at_attributes) {
    watch.looked_at_attributes = true;
    if (study_id.empty()) return true;
    watch.study_id = study_id;
    // What the series announces, from one instance's attributes (without its pixel data).
    const auto attributes = source.InstanceAttributes(series.instance_ids.front());
    const auto expected = attributes ? AnnouncedInstanceCount(*attributes) : std::nullopt;
    if (!expected) return true;  // it announces nothing: StableAge decides
    watch.expected = *expected;
    const auto rules = CurrentRules();
    if (std::none_of(rules->rules.begin(), rules->rules.end(),
                     [&](const RoutingRule& r) { return StartsOnCompleteSeries(*rules, r); })) {
      return true;  // no rule starts on a complete series
    }
  }
  if (count > watch.expected) return true;  // more than announced: StableAge decides
  // Complete, and no instance arrived since the last look.
  const bool complete = count == watch.expected && watch.last_count == count;
  watch.last_count = count;
  if (!complete) return false;
  const auto rules = CurrentRules();
  const StudyAttributes study = StudyForRouting(watch.study_id);
  const auto it = std::find_if(study.series.begin(), study.series.end(), [&](const SeriesAttributes& s) { return s.id == series_id; });
  if (it == study.series.end() || it->instance_ids.size() != watch.expected) return false;  // changed meanwhile
  std::vector<PlannedJob> planned;
  for (const auto& job : PlanJobs(*rules, study, EvaluateRuleSet(*rules, study))) {
    const auto rule = std::find_if(rules->rules.begin(), rules->rules.end(), [&](const RoutingRule& r) { return r.id == job.rule.id; });
    if (job.series_id == series_id && rule != rules->rules.end() && StartsOnCompleteSeries(*rules, *rule)) planned.push_back(job);
  }
  if (!planned.empty()) {
    EnqueuePlanned(watch.study_id, study, planned,
                   "series complete by its own count (" + std::to_string(count) + " of " + std::to_string(watch.expected) +
                       "): started before the study is stable");
  }
  return true;
}

// Every job through the metrics: a failure's class here; a success with its device and stage
// timings where RunJob has them.
JobOutcome Node::RunJobMeasured(JobContext& context) {
  const std::string& processor = context.job().spec.processor;
  try {
    return RunJob(context);
  } catch (const Error& e) {
    metrics_.JobFinished(processor, std::string(ErrorCodeName(e.code())), "", false, {});
    throw;
  } catch (const std::exception&) {
    metrics_.JobFinished(processor, "internal", "", false, {});
    throw;
  }
}

JobOutcome Node::RunJob(JobContext& context) {
  const Job& job = context.job();
  const JobSpec& spec = job.spec;
  const Processor* processor = processors_.Find(spec.processor);
  if (processor == nullptr) {
    throw Error(ErrorCode::kUnsupported, "processor '" + spec.processor + "' is not known to this node (procnode " + kVersion + ")");
  }
  // The rule's device, unless the node's Gpu setting is cpu; the node's setting when the rule says auto.
  const std::string device = spec.device != "auto" && config_.gpu != "cpu" ? spec.device : config_.gpu;
  // An anonymized route: de-identified with the node's secret under the rule's project, identities
  // sealed in the PHI vault before anything is stored.
  const bool anonymize = spec.anonymize.has_value();
  DeidentifyOptions anonymization;
  std::unique_ptr<PhiVault> vault;
  if (anonymize) {
    const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
    anonymization = AnonymizationOf(job);
    if (config_.phi_vault.empty() || keys == nullptr) {
      throw Error(ErrorCode::kUnsupported, "anonymized route: the PHI vault is not configured (ProcNode.PhiVault, PROCNODE_VAULT_KEYS)");
    }
    vault = std::make_unique<PhiVault>(config_.phi_vault, ParseVaultKeys(keys));
    vault->Migrate();
  }
  const std::vector<std::string>& destinations = spec.destinations;
  OrthancStudySource source(rest_);
  OrthancResultSink sink(rest_);
  PipelineContext ctx;
  ctx.progress = [&context](double fraction, const std::string& message) { context.Progress(fraction, message); };
  ctx.stop_requested = [&context] { return context.StopRequested(); };
  ctx.device = ParseDevicePreference(device);
  ctx.font_path = PROCNODE_FONT;
  ctx.result_series_numbers = config_.result_series_numbers;
  ctx.series_id = job.series_id;
  ctx.results = spec.results;
  if (!config_.work_directory.empty()) {
    ctx.keep_files_in = JobFilesFolder(job.id);
  }
  if (!config_.test_pause_after_stage.empty()) {
    ctx.after_stage = [this, &context](const std::string& stage) {
      if (stage != config_.test_pause_after_stage) return;
      Log(LogLevel::kWarning, "job " + std::to_string(context.job().id) + ": TestHooks pause after " + stage);
      context.Progress(context.job().progress, "paused after " + stage + " (TestHooks)", true);
      const auto end = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(config_.test_pause_seconds * 1000));
      while (std::chrono::steady_clock::now() < end && !context.StopRequested()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    };
  }
  const Provenance provenance{.job = std::to_string(job.id),
                              .rule = job.rule_id + "@" + std::to_string(job.rule_version),
                              .node = config_.node_name,
                              .study_id = job.study_id,
                              .idempotency_key = job.idempotency_key};
  if (anonymize) {
    if (spec.anonymize->results_to_clinical) {
      ctx.return_to_clinical = [&](const std::string& pseudonym) {
        const auto back = vault->Reidentify(anonymization.project, pseudonym, "job " + std::to_string(job.id),
                                            "results of an anonymized route returned to the clinical study");
        return std::make_pair(back.identity, back.uids);
      };
    }
    ctx.anonymize = &anonymization;
    ctx.keep_identity = [&](const std::string& pseudonym, const PatientIdentity& identity,
                            const std::map<std::string, std::string>& uid_map) {
      vault->Store(anonymization.project, pseudonym, identity, uid_map, "job " + std::to_string(job.id));
    };
  }
  ctx.registry = &processors_;
  auto result = RunPipeline(*processor, spec.parameters, source, sink, ctx, provenance);
  // The results go on to the rule's destinations; a destination that is down delays only them.
  if (!destinations.empty()) {
    std::vector<std::string> instances;
    for (const auto& stored : result.summary["results"]) {
      if (stored.contains("instances")) {
        for (const auto& id : stored["instances"]) instances.push_back(id.get<std::string>());
      } else {
        instances.push_back(stored["stored"].get<std::string>());
      }
    }
    for (const auto& name : destinations) {
      // A standalone worker does not know the Orthanc node's modalities: that node checks them
      // when it delivers.
      if (!config_.standalone_worker && !config_.destination_kinds.contains(name)) {
        throw Error(ErrorCode::kInvalidInput, "destination \"" + name + "\" is no longer configured");
      }
      queue_.AddDelivery(job.id, name, instances, config_.delivery_max_attempts);
    }
    result.summary["destinations"] = destinations;
    delivery_wake_.notify_all();
  }
  std::map<std::string, double> stages;
  for (const auto& [stage, ms] : result.summary["timings_ms"].items()) stages[stage] = ms.get<double>();
  const bool gpu = result.device.rfind("cuda", 0) == 0;
  metrics_.JobFinished(spec.processor, "done", gpu ? "gpu" : "cpu", !gpu && result.summary.contains("device_note"), stages);
  return JobOutcome{result.summary.dump(), result.device};
}

nlohmann::json Node::Status() {
  nlohmann::json status{
      {"name", "procnode"},
      {"version", kVersion},
      {"build", {{"cuda", kCudaCompiledIn}}},
      {"gpu", {{"found", gpu_.found}, {"devices", gpu_.device_count},
               {"name", gpu_.name.empty() ? nlohmann::json(nullptr) : nlohmann::json(gpu_.name)},
               {"reason", gpu_.reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(gpu_.reason)},
               {"preference", config_.gpu}}},
      {"workers", config_.workers},
      {"node", pool_->owner()},
      {"orthanc_id", config_.orthanc_id},
      {"running_jobs", pool_->RunningJobs()},
      {"admins_enforced", !config_.admins.empty() && (config_.orthanc_authentication || !config_.trusted_user_header.empty())},
      {"identity",
       {{"mode", !config_.trusted_user_header.empty() ? "trusted-header"
                 : config_.orthanc_authentication      ? "orthanc-authentication"
                                                       : "none"},
        {"anonymous_administration", config_.allow_anonymous_administration},
        {"admins", config_.admins.empty() ? "every verified user" : "ProcNode.Admins"},
        {"reidentification", config_.vault_roles.empty() ? "nobody (ProcNode.VaultRoles is empty)"
                              : (config_.orthanc_authentication || !config_.trusted_user_header.empty())
                                  ? "verified users in ProcNode.VaultRoles"
                                  : "nobody (no caller is verified)"}}},
      {"vault", vault_status_},
      {"viewer_url", config_.viewer_url.empty() ? nlohmann::json(nullptr) : nlohmann::json(config_.viewer_url)},
  };
  status["executor"] = {{"default", config_.executor.kind}, {"slurm", config_.executor.slurm}};
  if (config_.executor.slurm) {
    std::lock_guard lock(mutex_);
    status["executor"]["max_submitted"] = config_.executor.max_submitted;
    status["executor"]["submits_here"] = config_.executor.submit;
    status["executor"]["problem"] = slurm_problem_.empty() ? nlohmann::json(nullptr) : nlohmann::json(slurm_problem_);
  }
  status["destinations"] = nlohmann::json::array();
  for (const auto& [name, destination] : config_.destination_kinds) {
    status["destinations"].push_back({{"name", name}, {"kind", destination.kind}});
  }
  try {
    const auto rules = CurrentRules();
    status["rules"] = {{"version", rules->version}, {"source", rules->version == 0 ? "built-in default" : "saved"},
                       {"count", rules->rules.size()}};
  } catch (const Error& e) {
    status["rules"] = {{"error", e.what()}};
  }
  {
    std::lock_guard lock(mutex_);
    status["intake_pending"] = intake_.size() + deferred_.size();
    status["intake"] = {{"new", intake_.size()}, {"waiting", deferred_.size()},
                        {"waiting_for_database", waiting_for_database_},
                        {"reconcile_pending", reconcile_needed_},
                        {"problem", intake_problem_.empty() ? nlohmann::json(nullptr) : nlohmann::json(intake_problem_)}};
  }
  try {
    status["queue"] = queue_.CountByState();
    status["deliveries"] = queue_.DeliveryCountByState();
    status["database"] = {{"ok", true}};
  } catch (const Error& e) {
    status["queue"] = nullptr;
    status["database"] = {{"ok", false}, {"error", e.what()}};
  }
  return status;
}

std::string Node::MetricsText() {
  using Gauge = Metrics::Gauge;
  std::vector<Gauge> gauges;
  Gauge up{"procnode_database_up", "Whether the job database answered this scrape (1) or not (0).", {}};
  try {
    const auto g = queue_.ReadGauges();
    up.samples.push_back({{}, 1});
    Gauge jobs{"procnode_jobs", "Jobs of this Orthanc in the job database, by state.", {}};
    for (const auto& [state, count] : g.jobs) jobs.samples.push_back({{{"state", state}}, static_cast<double>(count)});
    gauges.push_back(jobs);
    gauges.push_back({"procnode_oldest_queued_job_seconds", "Age of the oldest queued job (0 when none is queued).",
                      {{{}, g.oldest_queued_seconds}}});
    Gauge deliveries{"procnode_deliveries", "Result deliveries, by destination and state.", {}};
    for (const auto& [key, count] : g.deliveries) {
      deliveries.samples.push_back({{{"destination", key.first}, {"state", key.second}}, static_cast<double>(count)});
    }
    gauges.push_back(deliveries);
    std::map<std::pair<std::string, std::string>, double> pools;
    for (const auto& w : queue_.Workers()) {
      if (w.live) pools[{w.kind, w.gpu.empty() ? "no" : "yes"}] += w.threads;
    }
    Gauge workers{"procnode_worker_threads", "Worker threads of the live worker pools of this Orthanc, by kind and GPU.", {}};
    for (const auto& [key, threads] : pools) workers.samples.push_back({{{"kind", key.first}, {"gpu", key.second}}, threads});
    gauges.push_back(workers);
  } catch (const Error& e) {
    up.samples.push_back({{}, 0});
  }
  gauges.push_back(up);
  {
    std::lock_guard lock(mutex_);
    gauges.push_back({"procnode_intake_pending", "Stable studies not routed yet (new and waiting).",
                      {{{}, static_cast<double>(intake_.size() + deferred_.size())}}});
    gauges.push_back({"procnode_intake_waiting_for_database", "Whether intake waits for the job database (1) or not (0).",
                      {{{}, waiting_for_database_ ? 1.0 : 0.0}}});
  }
  gauges.push_back({"procnode_running_jobs", "Jobs running in this process.", {{{}, static_cast<double>(pool_->RunningJobs().size())}}});
  gauges.push_back({"procnode_gpu_present", "Whether this process has a GPU it may use (1) or not (0).",
                    {{{}, gpu_.found && config_.gpu != "cpu" ? 1.0 : 0.0}}});
  return metrics_.Exposition(gauges);
}

std::vector<std::pair<std::string, float>> Node::MainGauges() {
  std::vector<std::pair<std::string, float>> out;
  try {
    const auto g = queue_.ReadGauges();
    out.push_back({"procnode_database_up", 1});
    for (const char* state : {"queued", "running", "failed"}) {
      out.push_back({std::string("procnode_jobs_") + state, static_cast<float>(g.jobs.count(state) ? g.jobs.at(state) : 0)});
    }
    out.push_back({"procnode_oldest_queued_job_seconds", static_cast<float>(g.oldest_queued_seconds)});
    int64_t dead = 0;
    for (const auto& [key, count] : g.deliveries) dead += key.second == "dead" ? count : 0;
    out.push_back({"procnode_deliveries_dead", static_cast<float>(dead)});
  } catch (const Error&) {
    out.push_back({"procnode_database_up", 0});
  }
  std::lock_guard lock(mutex_);
  out.push_back({"procnode_intake_pending", static_cast<float>(intake_.size() + deferred_.size())});
  return out;
}

nlohmann::json Node::Jobs(const std::optional<std::string>& state, int limit) {
  nlohmann::json jobs = nlohmann::json::array();
  const auto listed = queue_.List(state, limit);
  std::vector<int64_t> ids;
  for (const auto& job : listed) ids.push_back(job.id);
  auto deliveries = queue_.Deliveries(ids);  // one query for the whole list
  for (const auto& job : listed) {
    auto json = JobToJson(job);
    json["deliveries"] = nlohmann::json::array();
    for (const auto& d : deliveries[job.id]) json["deliveries"].push_back(DeliveryToJson(d));
    jobs.push_back(std::move(json));
  }
  return jobs;
}

std::optional<nlohmann::json> Node::JobDetail(int64_t id) {
  const auto job = queue_.Get(id);
  if (!job) return std::nullopt;
  nlohmann::json detail = JobToJson(*job, queue_.Events(id));
  detail["deliveries"] = nlohmann::json::array();
  for (const auto& d : queue_.Deliveries(id)) detail["deliveries"].push_back(DeliveryToJson(d));
  return detail;
}

std::string Node::JobFilesFolder(int64_t id) const {
  return (std::filesystem::path(config_.work_directory) / "jobs" / std::to_string(id)).string();
}

std::string Node::JobFile(int64_t id, const std::string& name) {
  const auto job = queue_.Get(id);
  if (!job) throw Error(ErrorCode::kNotFound, "job " + std::to_string(id) + " does not exist");
  const auto result = nlohmann::json::parse(job->result_json.empty() ? "{}" : job->result_json, nullptr, false);
  bool kept = false;
  if (result.is_object() && result.contains("files") && result["files"].is_array()) {
    for (const auto& file : result["files"]) kept = kept || (file.value("name", "") == name && file.value("kept", false));
  }
  if (!kept || config_.work_directory.empty()) {
    throw Error(ErrorCode::kNotFound, "job " + std::to_string(id) + " kept no file " + name);
  }
  const auto path = std::filesystem::path(JobFilesFolder(id)) / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kNotFound, "job " + std::to_string(id) + ": " + name + " is not on this node (removed, or kept by the "
                                      "standalone worker that ran the job)");
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

nlohmann::json Node::Reidentify(const nlohmann::json& body, const Caller& caller, bool* forbidden) {
  if (config_.phi_vault.empty()) throw Error(ErrorCode::kUnsupported, "no PHI vault is configured (ProcNode.PhiVault)");
  const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
  if (keys == nullptr) throw Error(ErrorCode::kUnsupported, "the PHI vault's keys are not in the environment (PROCNODE_VAULT_KEYS)");
  PhiVault vault(config_.phi_vault, ParseVaultKeys(keys));
  vault.Migrate();  // a fresh vault has its audit table before the first refusal is written
  auto text = [&](const char* key) {
    return body.is_object() && body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : std::string();
  };
  const std::string project = text("project"), pseudonym = text("pseudonym"), reason = text("reason");
  const std::string who = caller.verified ? caller.name : "unverified caller";
  auto refuse = [&](const std::string& why, const std::string& answer) {
    vault.Refused(project, pseudonym, who, why);
    audit_.Record({.who = who, .action = "vault.reidentify", .object = "project " + project, .outcome = "refused", .detail = why});
    Log(LogLevel::kWarning, "re-identification refused for " + caller.Describe() + " (" + why + "; audited)");
    *forbidden = true;
    return nlohmann::json{{"error", answer + "; the attempt is audited"}};
  };
  if (!caller.verified) {
    return refuse("caller not verified",
                  "re-identification needs a verified user (Orthanc's authentication, or ProcNode.TrustedUserHeader)");
  }
  if (project.empty() || pseudonym.empty()) throw Error(ErrorCode::kInvalidInput, "body: {\"project\", \"pseudonym\", \"reason\"} expected");
  const std::string& user = caller.name;
  const bool allowed = std::find(config_.vault_roles.begin(), config_.vault_roles.end(), user) != config_.vault_roles.end();
  if (!allowed) {
    return refuse("not in ProcNode.VaultRoles", "user \"" + user + "\" is not in the vault role (ProcNode.VaultRoles)");
  }
  Reidentified found;
  try {
    found = vault.Reidentify(project, pseudonym, user, reason);
  } catch (const Error& e) {
    audit_.Record({.who = user, .action = "vault.reidentify", .object = "project " + project, .outcome = "failed",
                   .detail = e.what()});
    throw;
  }
  audit_.Record({.who = user, .action = "vault.reidentify", .object = "project " + project, .outcome = "success",
                 .detail = "reason: " + reason});
  Log(LogLevel::kInfo, "re-identification granted to \"" + user + "\" (audited)");
  nlohmann::json answer = ReidentifiedJson(found);
  answer["project"] = project;
  answer["pseudonym"] = pseudonym;
  return answer;
}

nlohmann::json Node::Workers() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& w : queue_.Workers()) {
    out.push_back({{"owner", w.owner}, {"orthanc", w.orthanc_id}, {"kind", w.kind}, {"host", w.host},
                   {"threads", w.threads}, {"gpu", w.gpu.empty() ? nlohmann::json(nullptr) : nlohmann::json(w.gpu)},
                   {"host_memory_bytes", w.host_memory_bytes}, {"gpu_memory_bytes", w.gpu_memory_bytes},
                   {"started_at", w.started_at}, {"last_seen", w.last_seen}, {"live", w.live}});
  }
  return out;
}

std::string Node::SeriesNifti(const std::string& series_id, int part) {
  OrthancStudySource source(rest_);
  const SeriesRef series = source.GetSeries(series_id);
  // procnode's derived image series (an N4-corrected MR) convert like any series; its reports,
  // segmentations and measurement reports are not images.
  if (series.produced_by_procnode && (series.modality == "DOC" || series.modality == "SEG" || series.modality == "SR")) {
    throw Error(ErrorCode::kUnsupported, "series " + series_id + " is a procnode result (" + series.modality + "), not an image series");
  }
  std::string bytes;
  {  // the volumes go as soon as the file is made: Orthanc copies the answer
    const auto parts = ConvertSeriesToNifti(source, series);
    if (part < 1 || part > static_cast<int>(parts.size())) {
      throw Error(ErrorCode::kNotFound, "series " + series_id + " has " + std::to_string(parts.size()) +
                                            " part(s); part " + std::to_string(part) + " does not exist");
    }
    bytes = NiftiFileBytes(parts[part - 1].image, true);
  }
  return bytes;
}

nlohmann::json Node::RetryJob(int64_t id, const std::string& who) {
  auto job = JobToJson(queue_.Retry(id, who));
  audit_.Record({.who = who, .action = "job.retry", .object = "job " + std::to_string(id), .outcome = "success"});
  pool_->Wake();
  return job;
}

nlohmann::json Node::CancelJob(int64_t id, const std::string& who) {
  const Job cancelled = queue_.Cancel(id, who);
  // Its batch job goes too, pending or running (a running worker would also stop at its next
  // heartbeat; scancel frees the compute node at once). A batch job that already ended is no error.
  if (cancelled.executor == "slurm" && !cancelled.slurm.last_job_id.empty() && config_.executor.slurm && config_.executor.submit) {
    try {
      SlurmCommands(config_.executor).Cancel(cancelled.slurm.last_job_id);
      Log(LogLevel::kInfo, "job " + std::to_string(id) + ": Slurm job " + cancelled.slurm.last_job_id + " cancelled");
    } catch (const Error& e) {
      Log(LogLevel::kWarning, "job " + std::to_string(id) + ": " + e.what());
    }
  }
  auto job = JobToJson(cancelled);
  audit_.Record({.who = who, .action = "job.cancel", .object = "job " + std::to_string(id), .outcome = "success"});
  return job;
}

DeidentifyOptions Node::AnonymizationOf(const Job& job) const {
  const JobSpec& spec = job.spec;
  const char* secret = std::getenv("PROCNODE_ANONYMIZATION_SECRET");
  if (secret == nullptr || *secret == '\0') {
    throw Error(ErrorCode::kUnsupported, "anonymized route: PROCNODE_ANONYMIZATION_SECRET is not set for Orthanc");
  }
  DeidentifyOptions anonymization;
  anonymization.project = spec.anonymize->project.empty() ? "rule:" + job.rule_id : spec.anonymize->project;
  for (const auto& name : spec.anonymize->options) ApplyOptionName(name, anonymization);
  anonymization.pixel_rules = ParsePixelRules(config_.clean_pixel_rules_json);
  anonymization.secret = secret;
  return anonymization;
}

// A BIDS export of the job's study: the de-identified series by the rule's mapping, the job's
// result objects (pseudonymous; not those of a route that returns them to the clinical study) as
// derivatives.
Caller Node::Identify(const std::optional<std::string>& basic_user, const std::optional<std::string>& trusted_header) const {
  if (!config_.trusted_user_header.empty()) {
    if (trusted_header && !trusted_header->empty()) return {*trusted_header, true};
    return {};
  }
  if (config_.orthanc_authentication && basic_user && !basic_user->empty()) return {*basic_user, true};
  return {};
}

std::optional<std::string> Node::AdministrationRefusal(const Caller& caller) const {
  if (!caller.verified) {
    if (config_.allow_anonymous_administration) return std::nullopt;
    return std::string("procnode rules and jobs change only for verified users: turn on Orthanc's authentication "
                       "(AuthenticationEnabled with RegisteredUsers) or set ProcNode.TrustedUserHeader; "
                       "ProcNode.AllowAnonymousAdministration is for labs");
  }
  if (config_.admins.empty() || std::find(config_.admins.begin(), config_.admins.end(), caller.name) != config_.admins.end()) {
    return std::nullopt;
  }
  return "user \"" + caller.name + "\" may not change procnode rules or jobs (ProcNode.Admins)";
}

}  // namespace procnode
