// The node on an in-memory Orthanc (the OrthancRest port) and a real throwaway PostgreSQL: intake,
// reconciliation, outages of Orthanc, and a study sent again after its results were deleted.
#include "node/node.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "dicom/folder_source.h"
#include "dicom/io.h"
#include "jobs/test_database.h"

namespace procnode {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Orthanc's REST API as a map of URIs to answers; unknown URIs are 404, and `down` makes every
// call fail as an unreachable Orthanc would.
class FakeOrthanc : public OrthancRest {
 public:
  std::string Get(const std::string& uri) override {
    std::lock_guard lock(mutex_);
    if (down_) throw Error(ErrorCode::kUnavailable, "GET " + uri + ": Orthanc does not answer");
    const auto it = answers_.find(uri);
    if (it == answers_.end()) throw Error(ErrorCode::kNotFound, "GET " + uri + ": unknown resource");
    return it->second;
  }
  std::string Post(const std::string& uri, const std::string& body) override {
    std::lock_guard lock(mutex_);
    if (down_) throw Error(ErrorCode::kUnavailable, "POST " + uri + ": Orthanc does not answer");
    posts_.push_back(uri);
    if (uri.rfind("/modalities/", 0) == 0 && store_failures_ > 0) {
      --store_failures_;
      throw Error(ErrorCode::kUnavailable, "POST " + uri + ": the destination refused the association");
    }
    if (uri == "/instances") {
      const std::string id = "result-" + std::to_string(stored_.size() + 1);
      stored_.push_back(body);
      answers_["/instances/" + id] = json{{"ID", id}}.dump();
      return json{{"ID", id}}.dump();
    }
    return R"({"ID": "stored"})";
  }

  // A study of real DICOM files (a folder), served as Orthanc serves them.
  void AddFolderStudy(const std::string& id, const std::string& folder) {
    FolderStudySource files(folder);
    std::lock_guard lock(mutex_);
    json items = json::array();
    for (const auto& s : files.ListSeries("")) {
      json instances = json::array();
      for (const auto& instance : s.instance_ids) {
        const std::string key = id + "-" + std::to_string(files_.size());
        files_[key] = files.FetchInstance(instance);
        answers_["/instances/" + key + "/file"] = files_[key];
        instances.push_back(key);
      }
      answers_["/instances/" + instances[0].get<std::string>() + "/tags?short"] = json{{"0008,0060", s.modality}}.dump();
      items.push_back({{"ID", id + "-series"}, {"MainDicomTags", {{"Modality", s.modality}, {"Manufacturer", "scanner"}}},
                       {"Instances", instances}});
    }
    answers_["/studies/" + id + "/series"] = items.dump();
    answers_["/studies/" + id] = json{{"ID", id}, {"IsStable", true}}.dump();
    studies_.push_back(id);
    answers_["/studies"] = json(studies_).dump();
  }
  // An instance whose file is not DICOM.
  void CorruptInstance(const std::string& id) {
    std::lock_guard lock(mutex_);
    answers_["/instances/" + id + "/file"] = "this is not a DICOM file";
  }
  void FailStores(int count) {
    std::lock_guard lock(mutex_);
    store_failures_ = count;
  }
  std::vector<std::string> Posts() {
    std::lock_guard lock(mutex_);
    return posts_;
  }
  std::vector<std::string> Stored() {
    std::lock_guard lock(mutex_);
    return stored_;
  }

  // A stable (or still receiving) CT study with one series of two instances.
  void AddStudy(const std::string& id, bool stable = true, bool only_results = false) {
    std::lock_guard lock(mutex_);
    json series = json::array({{{"ID", id + "-series"},
                                {"MainDicomTags", {{"Modality", only_results ? "SR" : "CT"},
                                                   {"Manufacturer", only_results ? "procnode" : "scanner"}}},
                                {"Instances", {id + "-i1", id + "-i2"}}}});
    answers_["/studies/" + id + "/series"] = series.dump();
    answers_["/studies/" + id] = json{{"ID", id}, {"IsStable", stable}}.dump();
    answers_["/instances/" + id + "-i1/tags?short"] =
        json{{"0008,0060", "CT"}, {"0020,000d", "1.2.826.0.1.3680043.10." + std::to_string(id.size())}}.dump();
    studies_.push_back(id);
    answers_["/studies"] = json(studies_).dump();
  }
  // A CT study of one series still arriving: `count` instances so far, of `announced`
  // (ImagesInAcquisition; 0: not announced). Not stable.
  void SetArriving(const std::string& study, const std::string& series, int count, int announced) {
    std::lock_guard lock(mutex_);
    json instances = json::array();
    for (int i = 1; i <= count; ++i) instances.push_back(series + "-i" + std::to_string(i));
    const json item{{"ID", series}, {"ParentStudy", study}, {"MainDicomTags", {{"Modality", "CT"}, {"Manufacturer", "scanner"}}},
                    {"Instances", instances}};
    answers_["/series/" + series] = item.dump();
    answers_["/studies/" + study + "/series"] = json::array({item}).dump();
    answers_["/studies/" + study] = json{{"ID", study}, {"IsStable", false}}.dump();
    json tags{{"0008,0060", "CT"}, {"0020,000d", "1.2.826.0.1.3680043.10.77"}};
    if (announced > 0) tags["0020,1002"] = std::to_string(announced);
    answers_["/instances/" + series + "-i1/tags?short"] = tags.dump();
  }
  void SetInstance(const std::string& id, bool present) {
    std::lock_guard lock(mutex_);
    if (present) answers_["/instances/" + id] = json{{"ID", id}}.dump();
    else answers_.erase("/instances/" + id);
  }
  void SetDown(bool down) {
    std::lock_guard lock(mutex_);
    down_ = down;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> answers_{{"/studies", "[]"}};
  std::vector<std::string> studies_;
  std::map<std::string, std::string> files_;
  std::vector<std::string> posts_, stored_;
  int store_failures_ = 0;
  bool down_ = false;
};

NodeConfig Config(const std::string& dsn) {
  NodeConfig config;
  config.database = dsn;
  config.workers = 0;  // jobs are enqueued, not run: these tests are about intake
  config.node_name = "node-test";
  config.heartbeat_seconds = 20;
  return config;
}

json StudyJobs(Node& node, const std::string& study) {
  json out = json::array();
  for (const auto& job : node.Jobs(std::nullopt, 100)) {
    if (job["study"] == study) out.push_back(job);
  }
  return out;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout = 20s) {
  return testing::WaitUntil(done, timeout);
}

TEST(Node, AStableStudyMakesOneJobHoweverOftenItIsAnnouncedAndResultsMakeNone) {
  FakeOrthanc orthanc;
  orthanc.AddStudy("A");
  orthanc.AddStudy("R", true, true);
  Node node(Config(testing::FreshDatabase(false)), orthanc);
  node.StartWork();
  node.OnStableStudy("A");
  node.OnStableStudy("R");
  node.OnStableStudy("A");
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "A").size() == 1; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(StudyJobs(node, "A").size(), 1u);
  EXPECT_TRUE(StudyJobs(node, "R").empty()) << "a study of procnode results only is not an input";
  EXPECT_EQ(StudyJobs(node, "A")[0]["pipeline"], "volume-stats") << "the built-in rule";
}

TEST(Node, ReconciliationRoutesStableStudiesThatNobodyAnnounced) {
  FakeOrthanc orthanc;
  orthanc.AddStudy("B");
  orthanc.AddStudy("C", false);  // still receiving: its StableStudy comes later
  Node node(Config(testing::FreshDatabase(false)), orthanc);
  node.StartWork();  // no OnStableStudy at all: as after a restart that lost the events
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "B").size() == 1; }));
  EXPECT_TRUE(StudyJobs(node, "C").empty());
  EXPECT_FALSE(node.Status()["intake"]["reconcile_pending"].get<bool>());
}

TEST(Node, AStudyAnnouncedWhileOrthancIsDownIsRoutedOnceItAnswers) {
  FakeOrthanc orthanc;
  orthanc.AddStudy("D");
  Node node(Config(testing::FreshDatabase(false)), orthanc);
  orthanc.SetDown(true);
  node.StartWork();
  node.OnStableStudy("D");
  ASSERT_TRUE(WaitFor([&] { return !node.Status()["intake"]["problem"].is_null(); }));
  EXPECT_TRUE(StudyJobs(node, "D").empty());
  EXPECT_EQ(node.Status()["intake"]["waiting"].get<int>(), 1) << "kept, waiting for its next attempt";
  orthanc.SetDown(false);
  EXPECT_TRUE(WaitFor([&] { return StudyJobs(node, "D").size() == 1; }, 30s)) << "never forgotten";
}

TEST(Node, ADoneJobRunsAgainOnlyWhenItsStudyComesBackWithoutItsResults) {
  FakeOrthanc orthanc;
  orthanc.AddStudy("E");
  const std::string dsn = testing::FreshDatabase(false);
  Node node(Config(dsn), orthanc);
  node.StartWork();
  node.OnStableStudy("E");
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "E").size() == 1; }));
  const int64_t id = StudyJobs(node, "E")[0]["id"];
  PgJobQueue queue(dsn, {});
  ASSERT_TRUE(queue.Claim("worker"));
  ASSERT_TRUE(queue.Complete(id, "worker", R"({"results": [{"stored": "result-1"}, {"stored": "result-2"}]})", "cpu"));

  orthanc.SetInstance("result-1", true);
  orthanc.SetInstance("result-2", true);
  node.OnStableStudy("E");  // stable again, results in place (e.g. made unstable by them)
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(queue.Get(id)->state, "done");

  orthanc.SetInstance("result-2", false);  // deleted with the study, which is sent again
  node.OnStableStudy("E");
  ASSERT_TRUE(WaitFor([&] { return queue.Get(id)->state == "queued"; }));
  const auto events = queue.Events(id);
  EXPECT_EQ(events.back().kind, "rerun");
  EXPECT_NE(events.back().message.find("1 of its result object(s) no longer in Orthanc"), std::string::npos)
      << events.back().message;
  EXPECT_EQ(StudyJobs(node, "E").size(), 1u) << "the same job, not a new one";
}

// Issue 13, item 7: a series complete by its own count starts its series-level rules before the
// study is stable; one short of its count, or announcing nothing, waits for StableAge; the study
// stable later makes no second job.
TEST(Node, ASeriesCompleteByItsOwnCountStartsBeforeTheStudyIsStable) {
  FakeOrthanc orthanc;
  NodeConfig config = Config(testing::FreshDatabase(false));
  config.early_start_poll_seconds = 0.05;
  Node node(config, orthanc);
  node.SaveRules(R"({"rules": [{"id": "ct-series", "level": "series", "match": {"attribute": "Modality", "equals": "CT"},
                                "action": {"pipeline": "volume-stats"}}]})",
                 "test", "series-level rule");
  node.StartWork();
  orthanc.SetArriving("S1", "S1-ct", 1, 4);
  orthanc.SetArriving("S2", "S2-ct", 1, 4);
  orthanc.SetArriving("S3", "S3-ct", 1, 0);
  node.OnNewSeries("S1-ct");
  node.OnNewSeries("S2-ct");
  node.OnNewSeries("S3-ct");
  for (int count = 2; count <= 4; ++count) {
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(StudyJobs(node, "S1").empty()) << "not complete with " << count - 1 << " of 4";
    orthanc.SetArriving("S1", "S1-ct", count, 4);
    orthanc.SetArriving("S2", "S2-ct", std::min(count, 3), 4);
    orthanc.SetArriving("S3", "S3-ct", count, 0);
  }
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "S1").size() == 1; }, 10s)) << "4 of 4: started";
  EXPECT_EQ(StudyJobs(node, "S1")[0]["series"], "S1-ct");
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(StudyJobs(node, "S2").empty()) << "3 of 4 waits for StableAge";
  EXPECT_TRUE(StudyJobs(node, "S3").empty()) << "a series that announces nothing waits for StableAge";
  node.OnStableStudy("S1");
  node.OnStableStudy("S3");
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "S3").size() == 1; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(StudyJobs(node, "S1").size(), 1u) << "stable later: the same key, still one job";
}

const std::string kChest = std::string(PROCNODE_SHARED_DATA) + "/ct-chest-lung-dx-a0001/lung-kernel";

// Job execution through the node on the fake Orthanc: the study read over the port, the pipeline
// run, the result stored back, the delivery retried with backoff until the destination takes it.
TEST(NodeJobs, AJobRunsStoresItsResultAndItsDeliveryIsRetriedUntilSent) {
  FakeOrthanc orthanc;
  orthanc.AddFolderStudy("J", kChest);
  NodeConfig config = Config(testing::FreshDatabase(false));
  config.workers = 1;
  config.gpu = "cpu";
  config.poll_seconds = 0.1;
  config.destinations = {"pacs"};
  config.destination_kinds = {{"pacs", {.kind = "dicom", .target = "PACS"}}};
  config.delivery_backoff_seconds = 0.2;
  Node node(config, orthanc);
  node.SaveRules(R"({"rules": [{"id": "all", "match": {"all": []}, "action": {"pipeline": "volume-stats", "destinations": ["pacs"]}}]})",
                 "test", "with a destination");
  orthanc.FailStores(2);
  node.StartWork();
  node.OnStableStudy("J");
  ASSERT_TRUE(WaitFor([&] { return StudyJobs(node, "J").size() == 1 && StudyJobs(node, "J")[0]["state"] == "done"; }, 60s))
      << StudyJobs(node, "J").dump();
  const json job = StudyJobs(node, "J")[0];
  EXPECT_EQ(job["result"]["measurements"]["count"], 512u * 512u * 64u);
  ASSERT_EQ(orthanc.Stored().size(), 1u) << "one Encapsulated PDF";
  EXPECT_EQ(job["result"]["results"][0]["stored"], "result-1");
  ASSERT_TRUE(WaitFor([&] {
    const json jobs = StudyJobs(node, "J");
    return !jobs[0]["deliveries"].empty() && jobs[0]["deliveries"][0]["state"] == "sent";
  }, 30s)) << StudyJobs(node, "J").dump();
  const json delivery = StudyJobs(node, "J")[0]["deliveries"][0];
  EXPECT_EQ(delivery["attempts"], 3) << "two refusals, then sent";
  const auto posts = orthanc.Posts();
  EXPECT_EQ(std::count(posts.begin(), posts.end(), "/modalities/PACS/store"), 3);
}

// Each failure class ends as it should: input that is not DICOM fails the job at once with the
// instance named; an unknown processor fails it as unsupported; Orthanc down is retried.
TEST(NodeJobs, FailureClassesEndTheJobAsTheirClassSays) {
  FakeOrthanc orthanc;
  orthanc.AddFolderStudy("K", kChest);
  orthanc.CorruptInstance("K-5");
  orthanc.AddFolderStudy("L", kChest);
  NodeConfig config = Config(testing::FreshDatabase(false));
  config.workers = 1;
  config.gpu = "cpu";
  config.poll_seconds = 0.1;
  config.retry_backoff_seconds = 0.2;
  Node node(config, orthanc);
  node.StartWork();
  node.OnStableStudy("K");
  ASSERT_TRUE(WaitFor([&] { return !StudyJobs(node, "K").empty() && StudyJobs(node, "K")[0]["state"] == "failed"; }, 60s))
      << StudyJobs(node, "K").dump();
  const json bad = StudyJobs(node, "K")[0];
  EXPECT_EQ(bad["attempts"], 1) << "invalid input is not retried";
  EXPECT_NE(bad["error"].get<std::string>().find("K-5"), std::string::npos) << bad["error"];

  orthanc.SetDown(true);
  node.OnStableStudy("L");  // routed once Orthanc answers; the job then runs
  std::this_thread::sleep_for(500ms);
  orthanc.SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return !StudyJobs(node, "L").empty() && StudyJobs(node, "L")[0]["state"] == "done"; }, 60s))
      << StudyJobs(node, "L").dump();

  // A job row naming a processor this node does not have (enqueued by a newer node).
  PgJobQueue queue(config.database, {});
  const auto id = queue.Enqueue({.idempotency_key = "future", .study_id = "L", .rule_id = "r",
                                 .spec = {.processor = "from-the-future"}}).id;
  ASSERT_TRUE(WaitFor([&] { return queue.Get(id)->state == "failed"; }, 30s));
  EXPECT_NE(queue.Get(id)->error.find("processor 'from-the-future' is not known to this node"), std::string::npos)
      << queue.Get(id)->error;
  EXPECT_EQ(queue.Get(id)->attempts, 1);
}

}  // namespace
}  // namespace procnode
