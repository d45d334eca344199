#include "jobs/worker_pool.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "core/error.h"
#include "jobs/test_database.h"

namespace procnode {
namespace {

using namespace std::chrono_literals;

EnqueueRequest Request(const std::string& key) {
  return {.idempotency_key = key, .study_id = "s", .rule_id = "default", .spec = {.processor = "volume-stats"}};
}

WorkerPoolOptions Options(const std::string& owner, int workers = 2) {
  return {.workers = workers, .owner = owner, .poll_interval = 100ms, .heartbeat_interval = 500ms};
}

using testing::WaitUntil;

TEST(WorkerPool, RunsQueuedJobsToDoneWithTheirResultAndDevice) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 5s});
  const auto id = queue.Enqueue(Request("a")).id;
  WorkerPool pool(queue, [](JobContext& context) {
    context.Progress(0.5, "halfway");
    return JobOutcome{R"({"voxels": 8})", "cpu"};
  }, Options("pool-a"));
  pool.Start();
  ASSERT_TRUE(WaitUntil([&] { return queue.Get(id)->state == "done"; }));
  pool.Stop();
  const auto job = queue.Get(id);
  EXPECT_EQ(job->device, "cpu");
  EXPECT_NE(job->result_json.find("\"voxels\": 8"), std::string::npos) << job->result_json;
  EXPECT_EQ(job->progress, 1.0);
}

TEST(WorkerPool, AnInvalidInputErrorFailsTheJobWithItsMessage) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 5s});
  const auto id = queue.Enqueue(Request("a")).id;
  WorkerPool pool(queue, [](JobContext&) -> JobOutcome {
    throw Error(ErrorCode::kInvalidInput, "instance abc: PixelData holds 10 bytes, expected 524288");
  }, Options("pool-b"));
  pool.Start();
  ASSERT_TRUE(WaitUntil([&] { return queue.Get(id)->state == "failed"; }));
  pool.Stop();
  EXPECT_EQ(queue.Get(id)->error, "instance abc: PixelData holds 10 bytes, expected 524288");
  EXPECT_EQ(queue.Get(id)->attempts, 1);
}

TEST(WorkerPool, StoppingReleasesRunningJobsBackToTheQueue) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 5s});
  const auto id = queue.Enqueue(Request("a")).id;
  std::atomic<bool> entered{false};
  WorkerPool pool(queue, [&](JobContext& context) -> JobOutcome {
    entered = true;
    while (!context.StopRequested()) std::this_thread::sleep_for(10ms);
    throw Error(ErrorCode::kCancelled, "stopped");
  }, Options("pool-c"));
  pool.Start();
  ASSERT_TRUE(WaitUntil([&] { return entered.load(); }));
  EXPECT_EQ(pool.RunningJobs(), std::vector<int64_t>{id});
  pool.Stop();
  const auto job = queue.Get(id);
  EXPECT_EQ(job->state, "queued");
  EXPECT_EQ(job->attempts, 0);
  EXPECT_EQ(queue.Events(id).back().kind, "released");
}

TEST(WorkerPool, TwoPoolsOnOneQueueRunEachJobExactlyOnce) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 5s});
  for (int i = 0; i < 12; ++i) queue.Enqueue(Request("k" + std::to_string(i)));
  std::mutex mutex;
  std::map<int64_t, int> runs;
  auto runner = [&](JobContext& context) {
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mutex);
    ++runs[context.job().id];
    return JobOutcome{};
  };
  WorkerPool first(queue, runner, Options("node-1")), second(queue, runner, Options("node-2"));
  first.Start();
  second.Start();
  ASSERT_TRUE(WaitUntil([&] { return queue.CountByState()["done"] == 12; }));
  first.Stop();
  second.Stop();
  EXPECT_EQ(runs.size(), 12u);
  for (const auto& [id, count] : runs) EXPECT_EQ(count, 1) << "job " << id;
}

TEST(WorkerPool, AWorkerThatLostItsLeaseDiscardsItsOutcome) {
  PgJobQueue queue(testing::FreshDatabase(), {.lease = 2s});
  const auto id = queue.Enqueue(Request("a")).id;
  std::atomic<bool> saw_stop{false};
  // The heartbeat is slower than the lease, so the lease expires and another owner takes over.
  WorkerPool slow(queue, [&](JobContext& context) -> JobOutcome {
    const auto end = std::chrono::steady_clock::now() + 6s;
    while (!context.StopRequested() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
    saw_stop = context.LeaseLost();
    return JobOutcome{R"({"from": "slow"})", "cpu"};
  }, {.workers = 1, .owner = "slow", .poll_interval = 100ms, .heartbeat_interval = 4000ms});
  slow.Start();
  ASSERT_TRUE(WaitUntil([&] { return queue.Get(id)->state == "running"; }));
  std::this_thread::sleep_for(2200ms);
  auto taken = queue.Claim("fast");
  ASSERT_TRUE(taken);
  ASSERT_TRUE(queue.Complete(id, "fast", R"({"from": "fast"})", "cpu"));
  ASSERT_TRUE(WaitUntil([&] { return saw_stop.load(); }, 8s));
  slow.Stop();
  EXPECT_NE(queue.Get(id)->result_json.find("fast"), std::string::npos);
}

}  // namespace
}  // namespace procnode
