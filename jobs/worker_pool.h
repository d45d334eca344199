// A pool of worker threads that claim jobs from the PgJobQueue and run them.
//
// Each worker loops: claim a job, run the JobRunner on it, record the outcome (done; failed or
// retried, by the error's retryable flag; released when the pool is stopping); an outcome the
// job database cannot take now (outage) is retried with backoff until it can. One heartbeat
// thread extends the leases of the jobs this pool's workers are running or recording, and of no
// other row the owner may still hold; a worker whose lease was lost (another
// node reclaimed the job after a stall) sees StopRequested() and its outcome is discarded.
// Stop() asks every runner to stop at its next check, releases the jobs still running back to the
// queue (they are not lost, and their attempt is not counted), and joins the threads.
// Wake() cuts the poll wait short after a local enqueue. Start/Stop from one thread; Wake and the
// accessors from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job_queue.h"

namespace procnode {

// Handed to the runner of one job.
class JobContext {
 public:
  JobContext(PgJobQueue& queue, const Job& job, std::string owner, const std::atomic<bool>& pool_stopping);

  const Job& job() const { return job_; }
  // True when the runner should stop at once: the pool is stopping, the lease was lost, or an
  // admin cancelled the job.
  bool StopRequested() const { return pool_stopping_.load() || lease_lost_.load() || cancel_requested_.load(); }
  bool LeaseLost() const { return lease_lost_.load(); }
  bool CancelRequested() const { return cancel_requested_.load(); }
  void MarkCancelRequested() { cancel_requested_ = true; }
  // Records progress on the job (rate-limited to one write per 500 ms, except at 0 and 1 or when
  // `force` is set).
  void Progress(double fraction, const std::string& message, bool force = false);
  void MarkLeaseLost() { lease_lost_ = true; }

 private:
  PgJobQueue& queue_;
  Job job_;
  std::string owner_;
  const std::atomic<bool>& pool_stopping_;
  std::atomic<bool> lease_lost_{false};
  std::atomic<bool> cancel_requested_{false};
  std::chrono::steady_clock::time_point last_progress_{};
};

struct JobOutcome {
  std::string result_json = "{}";
  std::string device;
};

// Runs one job; throws Error on failure (kCancelled when it stopped on request).
using JobRunner = std::function<JobOutcome(JobContext&)>;

struct WorkerPoolOptions {
  int workers = 2;
  std::string owner;                                   // unique per process: node/pid/random
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds heartbeat_interval{20'000};
  // How this pool registers itself (GET /procnode/workers): "plugin" or "standalone", the Orthanc
  // whose jobs it runs, its host, and its GPU's name ('' for none).
  std::string kind = "plugin";
  std::string orthanc_id, host, gpu;
  uint64_t host_memory_bytes = 0, gpu_memory_bytes = 0;  // advertised; 0: unknown
};

class WorkerPool {
 public:
  WorkerPool(PgJobQueue& queue, JobRunner runner, WorkerPoolOptions options);
  ~WorkerPool();  // Stop()

  void Start();
  void Stop();
  void Wake();
  // Runs one job this owner has claimed (procnode worker --once), in the calling thread, its lease
  // kept alive meanwhile; returns the job's state afterwards (done, queued for a retry, failed,
  // cancelled), or "" when it could not be read back.
  std::string RunClaimed(const Job& job);
  // Asks the running jobs to stop at their next check (they are released back to the queue), from
  // any thread (a signal handler's thread); Stop() still joins.
  void RequestStop();

  int workers() const { return options_.workers; }
  const std::string& owner() const { return options_.owner; }
  // Ids of the jobs running in this pool now.
  std::vector<int64_t> RunningJobs() const;

 private:
  void WorkerLoop(int index);
  void HeartbeatLoop();
  void Register();  // registers or renews this pool's worker row; failures are logged
  void RunOne(const Job& job);
  // Waits `duration`, or less when stopping or when Wake() ran since `generation` was read.
  void WaitFor(std::chrono::milliseconds duration, uint64_t generation);
  uint64_t Generation() const;

  PgJobQueue& queue_;
  JobRunner runner_;
  WorkerPoolOptions options_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::set<JobContext*> running_;
  uint64_t wake_generation_ = 0;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

// "node/pid/random": unique among the processes that share one job database.
std::string MakeOwnerId(const std::string& node_name);

}  // namespace procnode
