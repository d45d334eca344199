#include "jobs/node_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/error.h"

namespace procnode {
namespace {

EnvLookup Env(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

std::string ErrorOf(const std::string& json) {
  try {
    ParseNodeConfig(json, Env({}));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(NodeConfig, ReadsTheProcNodeSectionWithDefaults) {
  const auto config = ParseNodeConfig(R"({"ProcNode": {"Database": "postgresql://db/jobs", "Workers": 4}})", Env({}));
  EXPECT_EQ(config.database, "postgresql://db/jobs");
  EXPECT_EQ(config.workers, 4);
  EXPECT_EQ(config.gpu, "auto");
  EXPECT_EQ(config.lease_seconds, 60);
  EXPECT_EQ(config.heartbeat_seconds, 20);
  EXPECT_TRUE(config.warnings.empty());
}

TEST(NodeConfig, TheEnvironmentOverridesTheDatabaseSecret) {
  const auto config = ParseNodeConfig(R"({"ProcNode": {"Database": "file"}})",
                                      Env({{"PROCNODE_DATABASE", "postgresql://env/jobs"}}));
  EXPECT_EQ(config.database, "postgresql://env/jobs");
  EXPECT_EQ(ParseNodeConfig("{}", Env({{"PROCNODE_DATABASE", "x"}})).database, "x");
}

TEST(NodeConfig, ErrorsNameTheKeyAndTheReason) {
  EXPECT_NE(ErrorOf("{}").find("ProcNode.Database: missing"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "Workers": "two"}})").find("ProcNode.Workers: must be an integer"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "Gpu": "cuda"}})").find("ProcNode.Gpu"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "LeaseSeconds": 10, "HeartbeatSeconds": 10}})")
                .find("ProcNode.HeartbeatSeconds"),
            std::string::npos);
  EXPECT_NE(ErrorOf("not json").find("not JSON"), std::string::npos);
}

TEST(NodeConfig, ResultSeriesNumbersPerKindOverTheFirstWavesBaseNumber) {
  EXPECT_TRUE(ParseNodeConfig(R"({"ProcNode": {"Database": "d"}})", Env({})).result_series_numbers.empty());
  const auto config = ParseNodeConfig(
      R"({"ProcNode": {"Database": "d", "ResultSeriesNumber": 500, "ResultSeriesNumbers": {"sr": 42}}})", Env({}));
  EXPECT_EQ(config.result_series_numbers, (std::map<std::string, int>{{"encapsulated-pdf", 500}, {"seg", 501}, {"sr", 42}, {"derived", 503}, {"sc", 505}}));
  EXPECT_TRUE(config.warnings.empty());
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "ResultSeriesNumbers": {"seg": "x"}}})").find("ProcNode.ResultSeriesNumbers.seg"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "ResultSeriesNumbers": [1]}})").find("ProcNode.ResultSeriesNumbers"),
            std::string::npos);
}

TEST(NodeConfig, AViewerUrlNeedsTheStudyPlaceholderAndAWebAddress) {
  EXPECT_EQ(ParseNodeConfig(R"({"ProcNode": {"Database": "d", "ViewerUrl": "/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}"}})",
                            Env({})).viewer_url,
            "/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}");
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "ViewerUrl": "https://pacs/viewer"}})").find("{StudyInstanceUID}"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"j({"ProcNode": {"Database": "d", "ViewerUrl": "javascript:alert({StudyInstanceUID})"}})j")
                .find("ProcNode.ViewerUrl: must be an http"),
            std::string::npos);
}

TEST(NodeConfig, TheSlurmExecutorNeedsTheWorkersConfigurationAndSaysWhatIsWrong) {
  const auto local = ParseNodeConfig(R"({"ProcNode": {"Database": "d"}})", Env({}));
  EXPECT_FALSE(local.executor.slurm);
  EXPECT_EQ(local.executor.kind, "local");
  const auto slurm = ParseNodeConfig(
      R"({"ProcNode": {"Database": "d", "WorkDirectory": "/srv/procnode",
          "Executor": {"WorkerConfig": "/etc/procnode/worker.json", "Partition": "cpu", "MaxSubmitted": 3,
                       "ExtraOptions": ["--exclusive"]}}})",
      Env({}));
  EXPECT_TRUE(slurm.executor.slurm);
  EXPECT_EQ(slurm.executor.kind, "slurm");
  EXPECT_EQ(slurm.executor.log_directory, "/srv/procnode/slurm");
  EXPECT_EQ(slurm.executor.max_submitted, 3);
  EXPECT_EQ(slurm.executor.extra_options, std::vector<std::string>{"--exclusive"});
  EXPECT_TRUE(slurm.executor.submit);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "WorkDirectory": "/w", "Executor": {"WorkerConfig": "/w", "Submit": "no"}}})")
                .find("ProcNode.Executor.Submit: must be true or false"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "Executor": {"Kind": "slurm"}}})").find("ProcNode.Executor.WorkerConfig"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "Executor": {"Kind": "pbs", "WorkerConfig": "/w"}}})")
                .find("ProcNode.Executor.Kind"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "WorkDirectory": "/w", "Executor": {"WorkerConfig": "/w", "Partiton": "x"}}})")
                .find("ProcNode.Executor.Partiton: unknown key"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "WorkDirectory": "/w", "Executor": {"WorkerConfig": "/w", "ExtraOptions": ["-N 2"]}}})")
                .find("ProcNode.Executor.ExtraOptions"),
            std::string::npos);
}

TEST(NodeConfig, AMisspeltKeyIsReportedNotSilentlyIgnored) {
  const auto config = ParseNodeConfig(R"({"ProcNode": {"Database": "d", "Worker": 3}})", Env({}));
  ASSERT_EQ(config.warnings.size(), 1u);
  EXPECT_NE(config.warnings[0].find("ProcNode.Worker"), std::string::npos);
  EXPECT_EQ(config.workers, 2);
}

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

NodeConfig ParseWith(const std::string& procnode_section, const std::string& rest = "") {
  return ParseNodeConfig(R"({"ProcNode": )" + procnode_section + rest + "}", [](const std::string&) { return std::nullopt; });
}

TEST(NodeConfigDestinations, NameOrthancModalitiesAndCarryTheDeliveryPolicy) {
  const auto config = ParseWith(
      R"({"Database": "postgresql://x", "Destinations": {"PACS": {"Modality": "pacs"}, "ARCHIVE": "archive"},
          "DeliveryMaxAttempts": 7, "DeliveryBackoffSeconds": 2})",
      R"(, "DicomModalities": {"pacs": ["PACS", "10.0.0.1", 104], "archive": ["ARC", "10.0.0.2", 104]})");
  std::map<std::string, std::string> modalities;
  for (const auto& [name, destination] : config.destination_kinds) {
    if (destination.kind == "dicom") modalities[name] = destination.target;
  }
  EXPECT_EQ(modalities, (std::map<std::string, std::string>{{"ARCHIVE", "archive"}, {"PACS", "pacs"}}));
  EXPECT_EQ(config.destinations.size(), 2u);
  EXPECT_EQ(config.delivery_max_attempts, 7);
  EXPECT_EQ(config.delivery_backoff_seconds, 2);
}

TEST(NodeConfigDestinations, AnUnknownModalityOrABadShapeIsRefusedWithTheKey) {
  try {
    ParseWith(R"({"Database": "postgresql://x", "Destinations": {"PACS": "pacs"}})", R"(, "DicomModalities": {})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ProcNode.Destinations.PACS"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not in DicomModalities"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ParseWith(R"({"Database": "postgresql://x", "Destinations": {"PACS": 104}})"), Error);
  EXPECT_THROW(ParseWith(R"({"Database": "postgresql://x", "DeliveryMaxAttempts": 0})"), Error);
  // Modalities kept in Orthanc's database cannot be checked at start.
  EXPECT_NO_THROW(ParseWith(R"({"Database": "postgresql://x", "Destinations": {"PACS": "pacs"}})",
                            R"(, "DicomModalitiesInDatabase": true)"));
}

TEST(NodeConfigDestinations, KindsDicomwebAndBidsCarryTheirTargetsAndAreChecked) {
  const auto config = ParseWith(
      R"({"Database": "postgresql://x", "Destinations": {
          "WEB": {"Kind": "dicomweb", "Server": "archive"},
          "RESEARCH": {"Kind": "bids", "Root": "/srv/bids", "Name": "Study", "FileMode": "0600", "DirectoryMode": "0700"},
          "PACS": {"Modality": "pacs"}}})",
      R"(, "DicomModalities": {"pacs": ["PACS", "10.0.0.1", 104]}, "DicomWeb": {"Servers": {"archive": ["http://a/"]}})");
  ASSERT_EQ(config.destination_kinds.size(), 3u);
  EXPECT_EQ(config.destination_kinds.at("WEB").kind, "dicomweb");
  EXPECT_EQ(config.destination_kinds.at("WEB").target, "archive");
  const auto& bids = config.destination_kinds.at("RESEARCH");
  EXPECT_EQ(bids.kind, "bids");
  EXPECT_EQ(bids.target, "/srv/bids");
  EXPECT_EQ(bids.dataset_name, "Study");
  EXPECT_EQ(bids.file_mode, 0600u);
  EXPECT_EQ(bids.dir_mode, 0700u);
  EXPECT_EQ(config.destination_kinds.at("PACS").target, "pacs");
  EXPECT_EQ(std::count_if(config.destination_kinds.begin(), config.destination_kinds.end(),
                          [](const auto& d) { return d.second.kind == "dicom"; }),
            1) << "only C-STORE destinations are Orthanc modalities";
  const std::pair<const char*, const char*> bad[] = {
      {R"({"X": {"Kind": "ftp"}})", "ProcNode.Destinations.X.Kind"},
      {R"({"X": {"Kind": "bids", "Root": "relative/path"}})", "ProcNode.Destinations.X.Root"},
      {R"({"X": {"Kind": "bids", "Root": "/srv", "FileMode": "rw-r"}})", "ProcNode.Destinations.X.FileMode"},
      {R"({"X": {"Kind": "bids", "Root": "/srv", "Group": "no-such-group-procnode"}})", "ProcNode.Destinations.X.Group"},
      {R"({"X": {"Kind": "dicomweb"}})", "ProcNode.Destinations.X.Server"},
      {R"({"X": {"Kind": "dicomweb", "Server": "elsewhere"}})", "ProcNode.Destinations.X.Server"},
  };
  for (const auto& [destinations, key] : bad) {
    try {
      ParseWith(std::string(R"({"Database": "postgresql://x", "Destinations": )") + destinations + "}",
                R"(, "DicomWeb": {"Servers": {"archive": ["http://a/"]}})");
      ADD_FAILURE() << destinations << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << destinations << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

// Issue 12, item 8: who is verified depends on Orthanc's own authentication, not on procnode's keys.
TEST(NodeConfigIdentity, OnlyOrthancsAuthenticationWithUsersVerifiesCallers) {
  auto parse = [](const std::string& orthanc) {
    return ParseNodeConfig(R"({"ProcNode": {"Database": "postgresql://db/jobs", "Admins": ["admin"]})" + orthanc + "}",
                           [](const std::string&) { return std::nullopt; });
  };
  EXPECT_FALSE(parse("").orthanc_authentication);
  EXPECT_FALSE(parse(R"(, "AuthenticationEnabled": true)").orthanc_authentication) << "no registered users";
  EXPECT_TRUE(parse(R"(, "AuthenticationEnabled": true, "RegisteredUsers": {"admin": "pw"})").orthanc_authentication);
  EXPECT_TRUE(parse(R"(, "RemoteAccessAllowed": true, "RegisteredUsers": {"admin": "pw"})").orthanc_authentication)
      << "Orthanc turns authentication on by default when remote access is allowed";
  EXPECT_FALSE(parse(R"(, "RemoteAccessAllowed": true, "AuthenticationEnabled": false, "RegisteredUsers": {"a": "b"})")
                   .orthanc_authentication);
  const auto unverified = parse("");
  ASSERT_FALSE(unverified.warnings.empty());
  EXPECT_NE(unverified.warnings.back().find("nothing verifies who a caller is"), std::string::npos);
  EXPECT_FALSE(unverified.allow_anonymous_administration);
}

TEST(NodeConfigIdentity, TheTrustedHeaderAndTheLabSettingAreExplicit) {
  const auto config = ParseNodeConfig(
      R"({"ProcNode": {"Database": "postgresql://db/jobs", "TrustedUserHeader": "X-Remote-User",
                       "AllowAnonymousAdministration": true, "RulesFile": "/etc/procnode/rules.json"}})",
      [](const std::string&) { return std::nullopt; });
  EXPECT_EQ(config.trusted_user_header, "x-remote-user");
  EXPECT_TRUE(config.allow_anonymous_administration);
  EXPECT_EQ(config.rules_file, "/etc/procnode/rules.json");
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "TrustedUserHeader": "Authorization"}})").find("not Authorization"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"ProcNode": {"Database": "d", "AllowAnonymousAdministration": "yes"}})").find("true or false"),
            std::string::npos);
}

}  // namespace
}  // namespace procnode
