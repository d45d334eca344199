#include "jobs/worker_pool.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "core/log.h"

namespace procnode {

JobContext::JobContext(PgJobQueue& queue, const Job& job, std::string owner,
                       const std::atomic<bool>& pool_stopping)
    : queue_(queue), job_(job), owner_(std::move(owner)), pool_stopping_(pool_stopping) {}

void JobContext::Progress(double fraction, const std::string& message, bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && fraction > 0 && fraction < 1 && now - last_progress_ < std::chrono::milliseconds(500)) return;
  last_progress_ = now;
  try {
    if (!queue_.Progress(job_.id, owner_, fraction, message)) lease_lost_ = true;
  } catch (const Error& e) {
    Log(LogLevel::kWarning, "job " + std::to_string(job_.id) + ": progress not recorded: " + e.what());
  }
}

std::string MakeOwnerId(const std::string& node_name) {
  std::random_device device;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(device()));
  return node_name + "/" + std::to_string(::getpid()) + "/" + suffix;
}

WorkerPool::WorkerPool(PgJobQueue& queue, JobRunner runner, WorkerPoolOptions options)
    : queue_(queue), runner_(std::move(runner)), options_(std::move(options)) {}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start() {
  if (started_) return;
  started_ = true;
  stopping_ = false;
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
  if (options_.workers > 0) {
    Register();
    threads_.emplace_back([this] { HeartbeatLoop(); });
  }
}

void WorkerPool::Register() {
  try {
    queue_.RegisterWorker({.owner = options_.owner, .orthanc_id = options_.orthanc_id, .kind = options_.kind,
                           .host = options_.host, .gpu = options_.gpu, .threads = options_.workers,
                           .host_memory_bytes = options_.host_memory_bytes, .gpu_memory_bytes = options_.gpu_memory_bytes},
                          3.0 * static_cast<double>(options_.heartbeat_interval.count()) / 1000.0 + 5.0);
  } catch (const std::exception& e) {
    Log(LogLevel::kWarning, std::string("worker registration not renewed: ") + e.what());
  }
}

void WorkerPool::Stop() {
  if (!started_) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  if (options_.workers > 0) {
    try {
      queue_.UnregisterWorker(options_.owner);
    } catch (const Error& e) {
      Log(LogLevel::kWarning, std::string("worker registration not removed (it expires): ") + e.what());
    }
  }
  started_ = false;
}

void WorkerPool::Wake() {
  {
    std::lock_guard lock(mutex_);
    ++wake_generation_;
  }
  wake_.notify_all();
}

uint64_t WorkerPool::Generation() const {
  std::lock_guard lock(mutex_);
  return wake_generation_;
}

std::vector<int64_t> WorkerPool::RunningJobs() const {
  std::lock_guard lock(mutex_);
  std::vector<int64_t> ids;
  for (const auto* context : running_) ids.push_back(context->job().id);
  return ids;
}

void WorkerPool::WaitFor(std::chrono::milliseconds duration, uint64_t generation) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, duration, [&] { return stopping_.load() || wake_generation_ != generation; });
}

void WorkerPool::RequestStop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

std::string WorkerPool::RunClaimed(const Job& job) {
  std::thread heartbeat([this] { HeartbeatLoop(); });
  RunOne(job);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  heartbeat.join();
  try {
    const auto after = queue_.Get(job.id);
    return after ? after->state : "";
  } catch (const Error&) {
    return "";
  }
}

void WorkerPool::WorkerLoop(int index) {
  auto backoff = options_.poll_interval;
  while (!stopping_) {
    std::optional<Job> job;
    const uint64_t generation = Generation();  // read before the claim: a Wake() after it is not missed
    try {
      job = queue_.Claim(options_.owner);
      backoff = options_.poll_interval;
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "worker " + std::to_string(index) + ": cannot claim jobs: " + e.what());
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
      WaitFor(backoff, generation);
      continue;
    }
    if (!job) {
      // Wait for Wake() (a local enqueue) or the poll interval (another node's enqueue, a retry
      // becoming due, an expired lease).
      WaitFor(options_.poll_interval, generation);
      continue;
    }
    RunOne(*job);
  }
}

void WorkerPool::RunOne(const Job& job) {
  JobContext context(queue_, job, options_.owner, stopping_);
  {
    std::lock_guard lock(mutex_);
    running_.insert(&context);
  }
  const std::string name = "job " + std::to_string(job.id);
  Log(LogLevel::kInfo, name + ": started (study " + job.study_id + ", rule " + job.rule_id + "@" +
                           std::to_string(job.rule_version) + ", attempt " + std::to_string(job.attempts) +
                           " of " + std::to_string(job.max_attempts) + ")");
  std::optional<JobOutcome> outcome;
  std::string failure;
  bool retryable = false, cancelled = false;
  try {
    outcome = runner_(context);
  } catch (const Error& e) {
    failure = e.what();
    retryable = e.retryable();
    cancelled = e.code() == ErrorCode::kCancelled;
  } catch (const std::exception& e) {
    failure = std::string("internal error: ") + e.what();
    retryable = true;
  }
  // The job stays in running_ (its lease renewed by the heartbeat) until its outcome is recorded:
  // a database outage right now must neither lose the outcome nor hand the job to another worker.
  auto record = [&] {
    if (context.LeaseLost()) {
      Log(LogLevel::kWarning, name + ": lease lost (another worker reclaimed it): outcome discarded");
    } else if (outcome) {
      if (!queue_.Complete(job.id, options_.owner, outcome->result_json, outcome->device)) {
        Log(LogLevel::kWarning, name + ": finished but its lease was lost: outcome discarded");
      } else {
        Log(LogLevel::kInfo, name + ": done");
      }
    } else if (context.CancelRequested()) {
      queue_.MarkCancelled(job.id, options_.owner);
      Log(LogLevel::kInfo, name + ": cancelled on request");
    } else if (cancelled || stopping_) {
      queue_.Release(job.id, options_.owner, stopping_ ? "node shutting down" : failure);
      Log(LogLevel::kInfo, name + ": released back to the queue");
    } else {
      const auto result = queue_.Fail(job.id, options_.owner, failure, retryable);
      Log(result == FailOutcome::kRetryScheduled ? LogLevel::kWarning : LogLevel::kError,
          name + (result == FailOutcome::kRetryScheduled ? ": failed, retry scheduled: " : ": failed: ") + failure);
    }
  };
  auto backoff = std::chrono::milliseconds(500);
  for (int attempt = 1;; ++attempt) {
    try {
      record();
      if (attempt > 1) Log(LogLevel::kInfo, name + ": outcome recorded after " + std::to_string(attempt) + " attempts");
      break;
    } catch (const Error& e) {
      if (!e.retryable() || stopping_ || context.LeaseLost()) {
        // Not recordable now: the lease is no longer renewed, so it expires and the job is
        // claimed again (and run again: results are idempotent). Nothing is lost.
        Log(LogLevel::kError, name + ": outcome not recorded (" + e.what() + "): the job runs again once its lease expires");
        break;
      }
      if (attempt == 1 || backoff >= std::chrono::milliseconds(30'000)) {
        Log(LogLevel::kWarning, name + ": outcome not recorded yet (" + e.what() + "): retrying until the job database answers");
      }
      WaitFor(backoff, Generation());
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
    }
  }
  {
    std::lock_guard lock(mutex_);
    running_.erase(&context);
  }
}

void WorkerPool::HeartbeatLoop() {
  while (!stopping_) {
    WaitFor(options_.heartbeat_interval, Generation());
    if (stopping_) break;
    if (options_.workers > 0) Register();
    try {
      // Only jobs already running before the UPDATE can be judged by its answer: one claimed
      // while it ran is not in it yet.
      const std::vector<int64_t> before = RunningJobs();
      const auto held = queue_.Heartbeat(options_.owner, before);
      std::lock_guard lock(mutex_);
      for (auto* context : running_) {
        const int64_t id = context->job().id;
        const bool judged = std::find(before.begin(), before.end(), id) != before.end();
        const auto lease = std::find_if(held.begin(), held.end(), [&](const HeldLease& h) { return h.id == id; });
        if (judged && lease == held.end()) context->MarkLeaseLost();
        if (lease != held.end() && lease->cancel_requested) context->MarkCancelRequested();
      }
    } catch (const std::exception& e) {
      Log(LogLevel::kWarning, std::string("heartbeat failed: ") + e.what());
    }
  }
}

}  // namespace procnode
