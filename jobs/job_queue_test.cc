#include "jobs/job_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "core/error.h"
#include "pg/migrations.h"
#include "jobs/test_database.h"

namespace procnode {
namespace {

using namespace std::chrono_literals;

EnqueueRequest Request(const std::string& key, int max_attempts = 3) {
  return {.idempotency_key = key, .study_id = "study-" + key, .rule_id = "default", .rule_version = 1,
          .spec = {.processor = "volume-stats"}, .max_attempts = max_attempts};
}

QueueOptions Fast() { return {.lease = 2s, .retry_backoff = 0ms}; }

TEST(Migrations, ApplyOnceAndAreIdempotent) {
  const std::string dsn = testing::FreshDatabase(false);
  const auto first = ApplyMigrations(dsn, JobDbMigrations());
  EXPECT_EQ(first.from_version, 0);
  EXPECT_EQ(first.applied.size(), JobDbMigrations().size());
  const auto second = ApplyMigrations(dsn, JobDbMigrations());
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.from_version, JobDbMigrations().back().version);
}

TEST(Migrations, ADatabaseNewerThanTheBinaryIsRefusedAndLeftUntouched) {
  const std::string dsn = testing::FreshDatabase(true);
  {
    pqxx::connection c(dsn);
    pqxx::work tx(c);
    tx.exec("INSERT INTO procnode_schema_migrations (version, name) VALUES (999, '0999_future')");
    tx.commit();
  }
  try {
    ApplyMigrations(dsn, JobDbMigrations());
    FAIL() << "expected refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("version 999, newer than this procnode"), std::string::npos) << e.what();
  }
  pqxx::connection c(dsn);
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec("SELECT max(version) FROM procnode_schema_migrations")[0][0].as<int>(), 999);
}

// Issue 13, item 2: job rows of the first wave (device, anonymize and destinations among the
// processor's parameters) read as typed specifications after migration 0009.
TEST(Migrations, FirstWaveJobRowsReadAsTypedSpecifications) {
  const std::string dsn = testing::FreshDatabase(false);
  std::vector<Migration> before;
  for (const auto& m : JobDbMigrations()) {
    if (m.version < 9) before.push_back(m);
  }
  ApplyMigrations(dsn, before);
  {
    pqxx::connection c(dsn);
    pqxx::work tx(c);
    tx.exec(R"(INSERT INTO jobs (idempotency_key, study_id, rule_id, rule_version, pipeline, parameters, needs_gpu, orthanc_id) VALUES
      ('k1', 's1', 'research', 3, 'lung-emphysema',
       '{"variant": "fast", "device": "gpu", "destinations": ["pacs"],
         "anonymize": {"project": "copd", "options": ["retain-uids"], "results": "clinical"}}', true, 'east'),
      ('k2', 's2', 'plain', 1, 'volume-stats', '{}', false, 'east'),
      ('k3', 's3', 'early', 1, 'volume-stats', '{"anonymize": true}', false, 'east'))");
    tx.commit();
  }
  ApplyMigrations(dsn, JobDbMigrations());
  PgJobQueue queue(dsn, {.orthanc_id = "east"});
  std::map<std::string, JobSpec> specs;
  for (const auto& job : queue.List(std::nullopt, 10)) specs[job.idempotency_key] = job.spec;
  ASSERT_EQ(specs.size(), 3u);
  const JobSpec& research = specs["k1"];
  EXPECT_EQ(research.processor, "lung-emphysema");
  EXPECT_EQ(research.parameters, nlohmann::json({{"variant", "fast"}}));
  EXPECT_EQ(research.device, "gpu");
  EXPECT_EQ(research.destinations, std::vector<std::string>{"pacs"});
  ASSERT_TRUE(research.anonymize);
  EXPECT_EQ(*research.anonymize, (AnonymizationSpec{.project = "copd", .options = {"retain-uids"}, .results_to_clinical = true}));
  EXPECT_TRUE(research.requirements.needs_gpu);
  EXPECT_EQ(specs["k2"], (JobSpec{.processor = "volume-stats"}));
  ASSERT_TRUE(specs["k3"].anonymize);
  EXPECT_EQ(specs["k3"].anonymize->project, "rule:early");
  // A job made now reads back the same way.
  JobSpec now{.processor = "volume-stats", .device = "cpu", .destinations = {"pacs"},
              .requirements = {.host_memory_bytes = 1 << 20}};
  const auto id = queue.Enqueue({.idempotency_key = "k4", .study_id = "s4", .rule_id = "r", .spec = now}).id;
  EXPECT_EQ(queue.Get(id)->spec, now);
}

TEST(Migrations, AnUnreachableDatabaseIsUnavailable) {
  try {
    ApplyMigrations("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", JobDbMigrations());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
  }
}

TEST(JobQueue, TheSameKeyTwiceGivesOneJob) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto first = queue.Enqueue(Request("k1"));
  const auto second = queue.Enqueue(Request("k1"));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(first.id, second.id);
  EXPECT_EQ(queue.CountByState()["queued"], 1);
}

TEST(JobQueue, ConcurrentClaimsNeverHandOutOneJobTwice) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  for (int i = 0; i < 40; ++i) queue.Enqueue(Request("k" + std::to_string(i)));
  std::mutex mutex;
  std::multiset<int64_t> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (auto job = queue.Claim("owner-" + std::to_string(t))) {
        std::lock_guard lock(mutex);
        claimed.insert(job->id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(claimed.size(), 40u);
  EXPECT_EQ(std::set<int64_t>(claimed.begin(), claimed.end()).size(), 40u);
  EXPECT_EQ(queue.CountByState()["running"], 40);
}

TEST(JobQueue, AnExpiredLeaseIsReclaimedAndTheOldOwnerCannotWrite) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k")).id;
  const auto first = queue.Claim("dead-worker");
  ASSERT_TRUE(first);
  EXPECT_FALSE(queue.Claim("other")) << "a live lease must not be claimed";
  std::this_thread::sleep_for(2200ms);
  const auto second = queue.Claim("other");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, id);
  EXPECT_EQ(second->attempts, 2);
  EXPECT_FALSE(queue.Complete(id, "dead-worker", "{}", "cpu"));
  EXPECT_TRUE(queue.Complete(id, "other", R"({"ok": true})", "cpu"));
  const auto events = queue.Events(id);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events[2].kind, "reclaimed");
  EXPECT_NE(events[2].message.find("lease of dead-worker expired"), std::string::npos);
  EXPECT_EQ(queue.Get(id)->state, "done");
}

TEST(JobQueue, HeartbeatsKeepTheLease) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k")).id;
  ASSERT_TRUE(queue.Claim("alive"));
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(900ms);
    EXPECT_EQ(queue.Heartbeat("alive", {id}).size(), 1u);
  }
  EXPECT_FALSE(queue.Claim("other"));
}

// Two jobs, both claimed by `owner`.
std::pair<int64_t, int64_t> TwoClaimedJobs(PgJobQueue& queue, const std::string& owner) {
  const auto first = queue.Enqueue(Request(owner + "-1")).id;
  const auto second = queue.Enqueue(Request(owner + "-2")).id;
  EXPECT_TRUE(queue.Claim(owner));
  EXPECT_TRUE(queue.Claim(owner));
  return {first, second};
}

// Issue 12, item 2: the heartbeat renewed every running row its owner held, so a job whose worker
// had given up on recording its outcome stayed running for ever. Now only the named jobs are kept.
TEST(JobQueue, AHeartbeatRenewsOnlyTheJobsItNames) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto [running, abandoned] = TwoClaimedJobs(queue, "node");
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(900ms);
    const auto held = queue.Heartbeat("node", {running});
    ASSERT_EQ(held.size(), 1u);
    EXPECT_EQ(held[0].id, running);
  }
  const auto reclaimed = queue.Claim("other");
  ASSERT_TRUE(reclaimed) << "the job nobody renews is claimed again once its lease expires";
  EXPECT_EQ(reclaimed->id, abandoned);
  EXPECT_TRUE(queue.Heartbeat("node", {}).empty());
}

TEST(JobQueue, AnAdminCanCancelOrRetryAJobWhoseWorkerIsGone) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto [a, b] = TwoClaimedJobs(queue, "gone");
  try {
    queue.Retry(a, "admin");
    FAIL() << "a running job with a live lease is not retried";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("its worker is alive"), std::string::npos) << e.what();
  }
  std::this_thread::sleep_for(2200ms);  // the leases expire: nobody renews them
  EXPECT_EQ(queue.Cancel(a, "admin").state, "cancelled");
  const auto again = queue.Retry(b, "admin");
  EXPECT_EQ(again.state, "queued");
  EXPECT_EQ(again.attempts, 0);
  EXPECT_FALSE(queue.Complete(b, "gone", "{}", "cpu")) << "the old worker cannot write any more";
  EXPECT_EQ(queue.Events(a).back().message, "cancelled while running; its worker stopped renewing the lease");
}

// Issue 14: a Slurm job is never claimed by local workers; its batch job's end is counted as an
// attempt when the job never started, and the job fails once its attempts are used or a retry
// cannot help; a finished job is no longer tracked, and a cancel request ends as cancelled.
TEST(JobQueue, SlurmJobsAreLeftToTheirBatchJobsAndTheirEndsFollowTheRetryPolicy) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  EnqueueRequest slurm = Request("s", 2);
  slurm.spec.executor = "slurm";
  const auto id = queue.Enqueue(slurm).id;
  const auto local = queue.Enqueue(Request("l")).id;
  const auto claimed = queue.Claim("node");
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, local);
  EXPECT_FALSE(queue.Claim("node")) << "the Slurm job is not a local worker's";

  auto reserved = queue.ReserveForSlurm(10);
  ASSERT_EQ(reserved.size(), 1u);
  EXPECT_EQ(reserved[0].id, id);
  EXPECT_EQ(reserved[0].executor, "slurm");
  EXPECT_TRUE(queue.ReserveForSlurm(10).empty()) << "reserved once";
  queue.SlurmSubmitted(id, "101", "#!/bin/sh\n");
  ASSERT_EQ(queue.SlurmTrackedJobs().size(), 1u);
  EXPECT_EQ(queue.SlurmTrackedJobs()[0].slurm_job_id, "101");
  EXPECT_EQ(queue.SlurmEnded(id, "99", "not its batch job", true), "") << "only the batch job now responsible counts";
  EXPECT_EQ(queue.SlurmEnded(id, "101", "Slurm job 101 was cancelled outside procnode (CANCELLED)", true), "queued");
  EXPECT_EQ(queue.Get(id)->attempts, 1) << "an attempt that never started still counts";
  EXPECT_TRUE(queue.SlurmTrackedJobs().empty());

  reserved = queue.ReserveForSlurm(10);
  ASSERT_EQ(reserved.size(), 1u);
  queue.SlurmSubmitted(id, "102", "#!/bin/sh\n");
  const auto run = queue.ClaimById(id, "compute-node");  // the batch job's worker
  ASSERT_TRUE(run);
  EXPECT_EQ(run->attempts, 2);
  EXPECT_EQ(queue.SlurmEnded(id, "102", "Slurm job 102: its compute node failed (NODE_FAIL)", true), "failed")
      << "its attempts are used";
  EXPECT_EQ(queue.Get(id)->error, "Slurm job 102: its compute node failed (NODE_FAIL)");
  EXPECT_EQ(queue.Get(id)->slurm.last_job_id, "102");

  // A job finished by its worker is no longer tracked; a cancel request ends as cancelled.
  // A Slurm job submitted as batch job `batch` and claimed by that batch job's worker.
  auto running_in_batch_job = [&](const std::string& key, const std::string& batch) {
    EnqueueRequest request = Request(key, 3);
    request.spec.executor = "slurm";
    const auto job = queue.Enqueue(request).id;
    EXPECT_EQ(queue.ReserveForSlurm(10).size(), 1u);
    queue.SlurmSubmitted(job, batch, "#!/bin/sh\n");
    EXPECT_TRUE(queue.ClaimById(job, "compute-node"));
    return job;
  };
  const auto other = running_in_batch_job("t", "103");
  EXPECT_EQ(queue.Cancel(other, "admin").state, "running");
  EXPECT_EQ(queue.SlurmEnded(other, "103", "Slurm job 103 was cancelled outside procnode (CANCELLED)", true), "cancelled");
  const auto done = running_in_batch_job("u", "104");
  ASSERT_TRUE(queue.Complete(done, "compute-node", "{}", "cpu"));
  EXPECT_TRUE(queue.SlurmTrackedJobs().empty());
  EXPECT_EQ(queue.SlurmEnded(done, "104", "late news", true), "");
}

// Item 3: a done job could not be run again (retry answered 400).
TEST(JobQueue, ADoneJobCanBeRunAgain) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k")).id;
  ASSERT_TRUE(queue.Claim("w"));
  ASSERT_TRUE(queue.Complete(id, "w", R"({"ok": true})", "cpu"));
  const auto again = queue.Retry(id, "admin");
  EXPECT_EQ(again.state, "queued");
  EXPECT_EQ(queue.Events(id).back().kind, "rerun-requested");
  EXPECT_FALSE(queue.Rerun(id, "study received again")) << "already queued";
  ASSERT_TRUE(queue.Claim("w"));
  ASSERT_TRUE(queue.Complete(id, "w", R"({"ok": true})", "cpu"));
  EXPECT_TRUE(queue.Rerun(id, "study received again"));
  EXPECT_EQ(queue.Events(id).back().kind, "rerun");
  EXPECT_EQ(queue.Enqueue(Request("k")).created, false) << "still one job per key";
}

TEST(JobQueue, RoutedStudiesAreRememberedForReconciliation) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  queue.IntakeSeen("s1");
  queue.IntakeSeen("s2");
  queue.IntakeDone("s1");
  EXPECT_EQ(queue.NotRouted({"s1", "s2", "s3"}), (std::vector<std::string>{"s2", "s3"}));
  EXPECT_EQ(queue.IntakePending(), std::vector<std::string>{"s2"});
  EXPECT_TRUE(queue.NotRouted({}).empty());
  EXPECT_EQ(queue.NotRouted({"it's"}), std::vector<std::string>{"it's"}) << "quoted";
}

TEST(JobQueue, RetriesAreBoundedByMaxAttempts) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k", 2)).id;
  ASSERT_TRUE(queue.Claim("w"));
  EXPECT_EQ(queue.Fail(id, "w", "Orthanc unreachable", true), FailOutcome::kRetryScheduled);
  EXPECT_EQ(queue.Get(id)->state, "queued");
  ASSERT_TRUE(queue.Claim("w"));
  EXPECT_EQ(queue.Fail(id, "w", "Orthanc unreachable", true), FailOutcome::kFailed);
  const auto job = queue.Get(id);
  EXPECT_EQ(job->state, "failed");
  EXPECT_EQ(job->attempts, 2);
  EXPECT_EQ(job->error, "Orthanc unreachable");
  EXPECT_FALSE(queue.Claim("w"));
}

TEST(JobQueue, ABadInputFailureIsNotRetried) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k", 3)).id;
  ASSERT_TRUE(queue.Claim("w"));
  EXPECT_EQ(queue.Fail(id, "w", "instance x: PixelData holds 10 bytes", false), FailOutcome::kFailed);
  EXPECT_EQ(queue.Get(id)->attempts, 1);
}

TEST(JobQueue, RetriesWaitForTheirBackoff) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 2s, .retry_backoff = 1000ms});
  const auto id = queue.Enqueue(Request("k", 3)).id;
  ASSERT_TRUE(queue.Claim("w"));
  queue.Fail(id, "w", "busy", true);
  EXPECT_FALSE(queue.Claim("w")) << "claimed before its backoff elapsed";
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(queue.Claim("w"));
}

TEST(JobQueue, AJobWhoseWorkerKeepsDyingFailsAfterMaxAttempts) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k", 1)).id;
  ASSERT_TRUE(queue.Claim("dies"));
  std::this_thread::sleep_for(2200ms);
  EXPECT_FALSE(queue.Claim("other"));
  const auto job = queue.Get(id);
  EXPECT_EQ(job->state, "failed");
  EXPECT_NE(job->error.find("worker stopped responding"), std::string::npos) << job->error;
}

TEST(JobQueue, ReleaseReturnsTheJobWithoutCountingTheAttempt) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto id = queue.Enqueue(Request("k")).id;
  ASSERT_TRUE(queue.Claim("w"));
  EXPECT_TRUE(queue.Release(id, "w", "node shutting down"));
  const auto job = queue.Get(id);
  EXPECT_EQ(job->state, "queued");
  EXPECT_EQ(job->attempts, 0);
  EXPECT_TRUE(job->lease_owner.empty());
}

TEST(JobQueue, ListFiltersByStateNewestFirst) {
  PgJobQueue queue(testing::FreshDatabase(), Fast());
  const auto a = queue.Enqueue(Request("a")).id;
  const auto b = queue.Enqueue(Request("b")).id;
  ASSERT_TRUE(queue.Claim("w"));  // takes a
  const auto queued = queue.List(std::string("queued"), 10);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].id, b);
  const auto all = queue.List(std::nullopt, 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, b);
  EXPECT_EQ(all[1].id, a);
  EXPECT_FALSE(queue.Get(9999));
}

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

// Issue 13, item 5: a job that must run on a GPU is left to workers with one, and says so.
TEST(JobQueueCapabilities, AJobThatNeedsAGpuWaitsForAWorkerWithOneAndSaysSo) {
  const std::string dsn = testing::FreshDatabase();
  PgJobQueue cpu(dsn, {.lease = 2s, .retry_backoff = 0ms, .orthanc_id = "east", .has_gpu = false});
  PgJobQueue gpu(dsn, {.lease = 2s, .retry_backoff = 0ms, .orthanc_id = "east", .has_gpu = true});
  EnqueueRequest request = Request("needs-gpu");
  request.spec.requirements.needs_gpu = true;
  const auto id = cpu.Enqueue(request).id;
  EXPECT_FALSE(cpu.Claim("cpu-worker")) << "a CPU worker leaves it";
  EXPECT_EQ(cpu.Get(id)->waiting_for, "a worker with a GPU: none is running");
  gpu.RegisterWorker({.owner = "gpu-worker", .orthanc_id = "east", .kind = "standalone", .host = "h", .gpu = "H200",
                      .threads = 1},
                     60);
  EXPECT_EQ(cpu.Get(id)->waiting_for, "") << "a live GPU worker exists: it is only queued";
  const auto claimed = gpu.Claim("gpu-worker");
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, id);
  EXPECT_TRUE(claimed->spec.requirements.needs_gpu);
  try {
    cpu.ClaimById(id, "cpu-worker");
    FAIL() << "--once on a CPU worker is refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a GPU"), std::string::npos);
  }
}

// A job estimated to need more memory than a worker has is left to one with enough, and says so
// while no live worker has enough.
TEST(JobQueueCapabilities, MemoryRequirementsRouteJobsToWorkersThatCanHoldThem) {
  const std::string dsn = testing::FreshDatabase();
  constexpr uint64_t kGiB = 1ull << 30;
  PgJobQueue small(dsn, {.lease = 2s, .retry_backoff = 0ms, .orthanc_id = "east", .has_gpu = true,
                         .host_memory_bytes = 4 * kGiB, .gpu_memory_bytes = 2 * kGiB});
  PgJobQueue big(dsn, {.lease = 2s, .retry_backoff = 0ms, .orthanc_id = "east", .has_gpu = true,
                       .host_memory_bytes = 64 * kGiB, .gpu_memory_bytes = 80 * kGiB});
  small.RegisterWorker({.owner = "small", .orthanc_id = "east", .kind = "plugin", .host = "a", .gpu = "T4", .threads = 1,
                        .host_memory_bytes = 4 * kGiB, .gpu_memory_bytes = 2 * kGiB},
                       60);
  EnqueueRequest host_heavy = Request("host-heavy");
  host_heavy.spec.requirements.host_memory_bytes = 12 * kGiB;
  EnqueueRequest gpu_heavy = Request("gpu-heavy");
  gpu_heavy.spec.device = "gpu";
  gpu_heavy.spec.requirements = {.needs_gpu = true, .device_memory_bytes = 6 * kGiB, .host_memory_bytes = kGiB};
  const auto host_id = small.Enqueue(host_heavy).id, gpu_id = small.Enqueue(gpu_heavy).id;
  EXPECT_EQ(small.Get(host_id)->waiting_for, "a worker with 12.0 GiB of memory: none is running");
  EXPECT_EQ(small.Get(gpu_id)->waiting_for, "a worker with a GPU and 6.0 GiB: none is running");
  EXPECT_FALSE(small.Claim("small")) << "neither fits the small worker";
  try {
    small.ClaimById(gpu_id, "small");
    FAIL() << "--once on a worker whose GPU is too small is refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs about 6.0 GiB of GPU memory; this worker's GPU has 2.0 GiB"), std::string::npos)
        << e.what();
  }
  big.RegisterWorker({.owner = "big", .orthanc_id = "east", .kind = "standalone", .host = "b", .gpu = "H200", .threads = 1,
                      .host_memory_bytes = 64 * kGiB, .gpu_memory_bytes = 80 * kGiB},
                     60);
  EXPECT_EQ(small.Get(host_id)->waiting_for, "");
  EXPECT_EQ(small.Get(gpu_id)->waiting_for, "");
  std::set<int64_t> claimed;
  while (const auto job = big.Claim("big")) claimed.insert(job->id);
  EXPECT_EQ(claimed, (std::set<int64_t>{host_id, gpu_id}));
  const auto workers = small.Workers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0].owner == "big" ? workers[0].gpu_memory_bytes : workers[1].gpu_memory_bytes, 80 * kGiB);
}

TEST(JobQueueCapabilities, AGpuPreferringJobWaitsForALiveGpuWorkerThenRunsOnTheCpu) {
  const std::string dsn = testing::FreshDatabase();
  PgJobQueue cpu(dsn, {.lease = 2s, .retry_backoff = 0ms, .orthanc_id = "east", .has_gpu = false, .gpu_wait = 2s});
  EnqueueRequest request = Request("prefers-gpu");
  request.spec.requirements.prefers_gpu = true;
  const auto first = cpu.Enqueue(request).id;
  ASSERT_TRUE(cpu.Claim("cpu-worker")) << "no GPU worker is alive: the CPU takes it at once";
  EXPECT_EQ(cpu.Get(first)->lease_owner, "cpu-worker");
  ASSERT_TRUE(cpu.Complete(first, "cpu-worker", "{}", "cpu"));

  cpu.RegisterWorker({.owner = "gpu-worker", .orthanc_id = "east", .kind = "standalone", .host = "h", .gpu = "H200",
                      .threads = 1},
                     60);
  request.idempotency_key = "prefers-gpu-2";
  const auto second = cpu.Enqueue(request).id;
  EXPECT_FALSE(cpu.Claim("cpu-worker")) << "left to the live GPU worker for its wait";
  std::this_thread::sleep_for(2200ms);
  const auto late = cpu.Claim("cpu-worker");
  ASSERT_TRUE(late) << "after the wait the CPU worker takes it";
  EXPECT_EQ(late->id, second);
}

TEST(JobQueueCapabilities, WorkersRegisterRenewExpireAndUnregister) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 2s, .orthanc_id = "east"});
  queue.RegisterWorker({.owner = "a", .orthanc_id = "east", .kind = "plugin", .host = "h1", .threads = 2}, 1);
  queue.RegisterWorker({.owner = "b", .orthanc_id = "west", .kind = "standalone", .host = "h2", .threads = 1}, 60);
  auto workers = queue.Workers();
  ASSERT_EQ(workers.size(), 1u) << "only this Orthanc's";
  EXPECT_EQ(workers[0].owner, "a");
  EXPECT_TRUE(workers[0].live);
  EXPECT_EQ(workers[0].threads, 2);
  std::this_thread::sleep_for(1200ms);
  EXPECT_FALSE(queue.Workers()[0].live) << "not renewed within its time";
  queue.RegisterWorker({.owner = "a", .orthanc_id = "east", .kind = "plugin", .host = "h1", .threads = 2}, 60);
  EXPECT_TRUE(queue.Workers()[0].live);
  queue.UnregisterWorker("a");
  EXPECT_TRUE(queue.Workers().empty());
}

}  // namespace
}  // namespace procnode
