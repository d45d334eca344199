// The Slurm executor: a procnode job whose executor is "slurm" runs as a batch job of its own,
// `procnode worker --once ID --config WORKER_CONFIG` on a compute node, which claims the job
// from the job database, fetches the study from Orthanc over REST, runs it and stores the
// results, as any standalone worker does. The node that enqueued the job submits it (sbatch),
// follows it (one squeue call per poll for all its batch jobs), cancels it (scancel) and maps a
// batch job that ended without finishing the job to procnode's retry policy, in Slurm's words.
//
// Why the job is never run twice at once nor lost: claiming is one UPDATE in the job database
// (a second batch job for the same job finds it taken and exits); a job is handed to Slurm by
// marking it in the database before sbatch runs, and a batch job that ends, or never starts in
// time, with the job still unfinished puts the job back in the queue (or fails it, when its
// attempts are used or retrying cannot help).
//
// This file: what the node decides (pure functions, unit-tested) and the Slurm commands it runs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "processors/processor.h"

namespace procnode {

struct SlurmResources {
  int cpus = 1;
  uint64_t memory_mb = 0;
  int time_minutes = 60;
  int gpus = 0;
  std::string partition;  // "" : Slurm's default
};

// From the job's requirements and its processor: a GPU when the job needs one (in GpuPartition
// when set), the estimated host memory with headroom (at least 1 GiB), the processor's CPUs and
// time limit (external tools' manifests) or the executor's defaults.
SlurmResources SlurmResourcesFor(const Job& job, const ProcessorInfo* processor, const NodeConfig::Executor& executor);

// The batch script: sbatch options as #SBATCH lines, then exec of the worker. Holds no secret
// (the worker reads its database and Orthanc credentials from WORKER_CONFIG on the compute node)
// and no patient data (job id, processor and rule only).
std::string SlurmBatchScript(const Job& job, const SlurmResources& resources, const NodeConfig::Executor& executor,
                             const std::string& job_log_folder);

struct SlurmJobState {
  std::string state, reason;  // squeue's %T and %r
};

// `squeue -h --states=all -o %i|%T|%r` output by job id (array tasks and other lines left out).
std::map<std::string, SlurmJobState> ParseSqueue(const std::string& out);

// Whether squeue's state is one a batch job does not leave (it has ended).
bool SlurmStateEnded(const std::string& state);

struct SlurmEnd {
  std::string message;  // for the job's error: Slurm's state and reason, and what procnode does
  bool retryable = true;
};

// A batch job that ended with its procnode job unfinished: `state` is squeue's final state ("" when
// the job already left the controller). A time limit or an out-of-memory kill would recur on a
// retry with the same resources, so those fail the job at once; the others are retried.
SlurmEnd DescribeSlurmEnd(const std::string& slurm_job_id, const std::string& state, const std::string& reason);

// sbatch, squeue and scancel, with SLURM_CONF from the executor's configuration. Errors are
// Error(kUnavailable) with the command's own message.
class SlurmCommands {
 public:
  explicit SlurmCommands(const NodeConfig::Executor& executor) : executor_(executor) {}
  // Submits a script file; returns the batch job id.
  std::string Submit(const std::string& script_path);
  // The state of each of `ids` still known to the controller.
  std::map<std::string, SlurmJobState> Query(const std::vector<std::string>& ids);
  void Cancel(const std::string& id);

 private:
  std::vector<std::pair<std::string, std::string>> Env() const;
  const NodeConfig::Executor& executor_;
};

}  // namespace procnode
