// The node's side of the Slurm executor (node/slurm_executor.h): a loop that follows this
// Orthanc's batch jobs and submits its queued Slurm jobs while there is room.
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "node/node.h"
#include "node/slurm_executor.h"

namespace procnode {

void Node::StartSlurmLoop() {
  if (!config_.executor.slurm || !config_.executor.submit || slurm_thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  slurm_thread_ = std::thread([this] { SlurmLoop(); });
}

void Node::SlurmLoop() {
  Log(LogLevel::kInfo, "Slurm executor: default executor " + config_.executor.kind + ", at most " +
                           std::to_string(config_.executor.max_submitted) + " batch job(s) at once, scripts and logs in " +
                           config_.executor.log_directory);
  const auto poll = std::chrono::duration<double>(config_.executor.poll_seconds);
  while (true) {
    {
      std::unique_lock lock(mutex_);
      slurm_wake_.wait_for(lock, poll, [&] { return stopping_; });
      if (stopping_) return;
    }
    std::string problem;
    try {
      SlurmPass();
    } catch (const std::exception& e) {  // Slurm or the database away: said once, tried again next poll
      problem = e.what();
    }
    std::lock_guard lock(mutex_);
    if (problem != slurm_problem_ && !problem.empty()) Log(LogLevel::kError, "Slurm executor: " + problem);
    if (problem.empty() && !slurm_problem_.empty()) Log(LogLevel::kInfo, "Slurm executor: working again");
    slurm_problem_ = problem;
  }
}

void Node::SlurmPass() {
  SlurmCommands slurm(config_.executor);
  const auto tracked = queue_.SlurmTrackedJobs();
  std::vector<std::string> ids;
  for (const auto& t : tracked) {
    if (t.slurm_job_id != kSlurmSubmitting) ids.push_back(t.slurm_job_id);
  }
  const auto states = ids.empty() ? std::map<std::string, SlurmJobState>{} : slurm.Query(ids);
  int in_slurm = 0;
  for (const auto& t : tracked) {
    const std::string job = "job " + std::to_string(t.id);
    if (t.slurm_job_id == kSlurmSubmitting) {
      // sbatch was running when a node stopped: after five minutes the job is given back.
      if (t.seconds_since_submission > 300) {
        queue_.SlurmEnded(t.id, t.slurm_job_id, "its submission to Slurm was interrupted (the node stopped)", true);
      } else {
        ++in_slurm;
      }
      continue;
    }
    const auto it = states.find(t.slurm_job_id);
    if (it == states.end() || SlurmStateEnded(it->second.state)) {
      const auto end = DescribeSlurmEnd(t.slurm_job_id, it == states.end() ? "" : it->second.state,
                                        it == states.end() ? "" : it->second.reason);
      const std::string now = queue_.SlurmEnded(t.id, t.slurm_job_id, end.message, end.retryable);
      if (!now.empty()) Log(LogLevel::kWarning, job + ": " + end.message + "; the job is " + now);
      continue;
    }
    const SlurmJobState& state = it->second;
    if (state.state != t.slurm_state || state.reason != t.slurm_reason) queue_.SlurmObserved(t.id, t.slurm_job_id, state.state, state.reason);
    if (state.state == "PENDING" && t.seconds_since_submission > config_.executor.start_timeout_seconds) {
      slurm.Cancel(t.slurm_job_id);
      const std::string message = "Slurm job " + t.slurm_job_id + " did not start within " +
                                  std::to_string(config_.executor.start_timeout_seconds) + " s (PENDING" +
                                  (state.reason.empty() || state.reason == "None" ? "" : ", reason " + state.reason) +
                                  "); cancelled (Executor.StartTimeoutSeconds)";
      const std::string now = queue_.SlurmEnded(t.id, t.slurm_job_id, message, true);
      if (!now.empty()) Log(LogLevel::kWarning, job + ": " + message + "; the job is " + now);
      continue;
    }
    ++in_slurm;
  }
  // Backpressure: at most MaxSubmitted batch jobs of this node in Slurm; the rest wait here.
  const int room = config_.executor.max_submitted - in_slurm;
  if (room <= 0) return;
  for (const Job& job : queue_.ReserveForSlurm(room)) {
    const Processor* processor = processors_.Find(job.spec.processor);
    const SlurmResources resources = SlurmResourcesFor(job, processor != nullptr ? &processor->Info() : nullptr, config_.executor);
    const std::string folder = config_.executor.log_directory + "/job-" + std::to_string(job.id);
    try {
      std::filesystem::create_directories(folder);
      const std::string script = SlurmBatchScript(job, resources, config_.executor, folder);
      const std::string path = folder + "/batch-" + std::to_string(job.attempts + 1) + "-" +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                  std::chrono::system_clock::now().time_since_epoch()).count()) + ".sh";
      WriteFileBytes(path, script);
      const std::string id = slurm.Submit(path);
      queue_.SlurmSubmitted(job.id, id, script);
      Log(LogLevel::kInfo, "job " + std::to_string(job.id) + ": submitted to Slurm as job " + id + " (" +
                               std::to_string(resources.cpus) + " CPU, " + std::to_string(resources.memory_mb) + " MiB, " +
                               std::to_string(resources.time_minutes) + " min" + (resources.gpus ? ", GPU" : "") + ")");
    } catch (const std::exception& e) {
      const std::string message = std::string("not submitted to Slurm: ") + e.what();
      const std::string now = queue_.SlurmEnded(job.id, kSlurmSubmitting, message, true);
      Log(LogLevel::kError, "job " + std::to_string(job.id) + ": " + message + (now.empty() ? "" : "; the job is " + now));
    }
  }
}

}  // namespace procnode
