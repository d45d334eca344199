#include "node/slurm_executor.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

Job LungJob() {
  Job job;
  job.id = 42;
  job.rule_id = "chest-ct";
  job.rule_version = 3;
  job.attempts = 0;
  job.max_attempts = 3;
  job.spec.processor = "lung-emphysema";
  job.spec.requirements.host_memory_bytes = 2ull << 30;
  return job;
}

NodeConfig::Executor Executor() {
  NodeConfig::Executor e;
  e.slurm = true;
  e.kind = "slurm";
  e.partition = "cpu";
  e.gpu_partition = "gpu";
  e.worker_config = "/etc/procnode/worker.json";
  e.log_directory = "/srv/procnode/slurm";
  e.extra_options = {"--exclusive"};
  e.account = "radiology";
  return e;
}

TEST(SlurmResources, FromTheJobsRequirementsAndTheProcessor) {
  const auto r = SlurmResourcesFor(LungJob(), nullptr, Executor());
  EXPECT_EQ(r.cpus, 2);
  EXPECT_EQ(r.memory_mb, 2048u * 3 / 2 + 512);  // estimate with headroom
  EXPECT_EQ(r.time_minutes, 60);
  EXPECT_EQ(r.gpus, 0);
  EXPECT_EQ(r.partition, "cpu");

  Job gpu = LungJob();
  gpu.spec.requirements.needs_gpu = true;
  gpu.spec.requirements.host_memory_bytes = 0;
  ProcessorInfo tool;
  tool.details = {{"requirements", {{"cpus", 4}, {"time_limit_seconds", 90}}}};
  const auto g = SlurmResourcesFor(gpu, &tool, Executor());
  EXPECT_EQ(g.gpus, 1);
  EXPECT_EQ(g.partition, "gpu");
  EXPECT_EQ(g.cpus, 4);
  EXPECT_EQ(g.time_minutes, 2);  // 90 s rounded up to whole minutes
  EXPECT_EQ(g.memory_mb, 1024u);  // at least 1 GiB
}

TEST(SlurmBatchScript, RunsTheWorkerOnceWithTheResourcesAndNoSecret) {
  const Job job = LungJob();
  const auto script = SlurmBatchScript(job, SlurmResourcesFor(job, nullptr, Executor()), Executor(), "/srv/procnode/slurm/job-42");
  EXPECT_EQ(script.rfind("#!/bin/sh\n", 0), 0u);
  for (const char* line : {"#SBATCH --job-name=procnode-42\n", "#SBATCH --no-requeue\n", "#SBATCH --cpus-per-task=2\n",
                           "#SBATCH --mem=3584M\n", "#SBATCH --time=60\n", "#SBATCH --partition=cpu\n",
                           "#SBATCH --account=radiology\n", "#SBATCH --exclusive\n",
                           "#SBATCH --output=/srv/procnode/slurm/job-42/slurm-%j.out\n",
                           "exec '/usr/bin/procnode' worker --once 42 --workers 1 --config '/etc/procnode/worker.json'\n"}) {
    EXPECT_NE(script.find(line), std::string::npos) << line << " in\n" << script;
  }
  EXPECT_EQ(script.find("--gres"), std::string::npos);
  EXPECT_EQ(script.find("postgresql://"), std::string::npos);
}

TEST(ParseSqueue, ReadsStateAndReasonByJobId) {
  const auto states = ParseSqueue("12|PENDING|Resources\n13|RUNNING|None\n14|CANCELLED|BeginTime\nnoise\n15_1|RUNNING|None\n");
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states.at("12").state, "PENDING");
  EXPECT_EQ(states.at("12").reason, "Resources");
  EXPECT_EQ(states.at("13").state, "RUNNING");
  EXPECT_EQ(states.at("14").state, "CANCELLED");
  EXPECT_TRUE(ParseSqueue("").empty());
}

TEST(SlurmEnd, SlurmsWordsAndWhetherARetryCanHelp) {
  EXPECT_TRUE(SlurmStateEnded("TIMEOUT"));
  EXPECT_TRUE(SlurmStateEnded("NODE_FAIL"));
  EXPECT_FALSE(SlurmStateEnded("PENDING"));
  EXPECT_FALSE(SlurmStateEnded("COMPLETING"));
  const auto timeout = DescribeSlurmEnd("7", "TIMEOUT", "TimeLimit");
  EXPECT_FALSE(timeout.retryable);
  EXPECT_NE(timeout.message.find("Slurm job 7 reached its time limit (TIMEOUT, reason TimeLimit)"), std::string::npos);
  EXPECT_FALSE(DescribeSlurmEnd("7", "OUT_OF_MEMORY", "").retryable);
  const auto cancelled = DescribeSlurmEnd("8", "CANCELLED", "None");
  EXPECT_TRUE(cancelled.retryable);
  EXPECT_EQ(cancelled.message, "Slurm job 8 was cancelled outside procnode (CANCELLED)");
  EXPECT_TRUE(DescribeSlurmEnd("9", "NODE_FAIL", "").retryable);
  EXPECT_TRUE(DescribeSlurmEnd("9", "", "").retryable);
  EXPECT_NE(DescribeSlurmEnd("9", "", "").message.find("no longer known"), std::string::npos);
}

}  // namespace
}  // namespace procnode
