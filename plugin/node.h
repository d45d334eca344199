// One procnode node inside Orthanc: configuration, job queue, intake thread and worker pool.
//
// The StableStudy callback only calls OnStableStudy(), which puts the study ID in an in-memory
// intake list and returns at once. The intake thread lists the study's series through Orthanc,
// plans jobs with the rule set (default rule for now) and enqueues them idempotently; procnode's
// own result series are not inputs, so storing results never creates jobs. Workers run the
// pipeline. StartWork() runs at OrthancStarted, StopWork() at OrthancStopped or Finalize
// (running jobs are released back to the queue). Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "jobs/worker_pool.h"
#include "processors/volume_stats.h"

namespace procnode {

class Node {
 public:
  // Applies the job database migrations; throws Error when the database is unreachable or newer.
  explicit Node(NodeConfig config);
  ~Node();

  void StartWork();
  void StopWork();
  void OnStableStudy(const std::string& study_id);

  nlohmann::json Status();
  nlohmann::json Jobs(const std::optional<std::string>& state, int limit);
  std::optional<nlohmann::json> JobDetail(int64_t id);
  // The Orthanc series as a gzip-compressed NIfTI-1 file; Error(kNotFound) for an unknown series,
  // Error(kUnsupported) for what the converter refuses.
  std::string SeriesNifti(const std::string& series_id);

 private:
  void IntakeLoop();
  void Intake(const std::string& study_id);
  JobOutcome RunJob(JobContext& context);

  NodeConfig config_;
  GpuStatus gpu_;
  PgJobQueue queue_;
  std::unique_ptr<WorkerPool> pool_;
  std::mutex mutex_;
  std::condition_variable intake_wake_;
  std::deque<std::string> intake_;
  bool stopping_ = false;
  std::thread intake_thread_;
};

}  // namespace procnode
