#include "jobs/node_config.h"

#include <grp.h>

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace procnode {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& key, const std::string& reason) {
  throw Error(ErrorCode::kInvalidInput, "ProcNode." + key + ": " + reason);
}

// A list of Orthanc user names (Admins, VaultRoles); empty when absent.
std::vector<std::string> UserNames(const json& section, const std::string& key) {
  std::vector<std::string> names;
  if (!section.contains(key)) return names;
  if (!section[key].is_array()) Bad(key, "must be a list of Orthanc user names");
  for (const auto& name : section[key]) {
    if (!name.is_string()) Bad(key, "must be a list of Orthanc user names, got " + name.dump());
    names.push_back(name.get<std::string>());
  }
  return names;
}

// Values of the ProcNode section, or of a section inside it (`at`: "Executor." for its keys).
std::string String(const json& section, const std::string& key, const std::string& fallback, const std::string& at = "") {
  if (!section.contains(key)) return fallback;
  if (!section[key].is_string()) Bad(at + key, "must be a string, got " + section[key].dump());
  return section[key].get<std::string>();
}

double Number(const json& section, const std::string& key, double fallback, double lo, double hi, const std::string& at = "") {
  if (!section.contains(key)) return fallback;
  const json& value = section[key];
  if (!value.is_number() || value.get<double>() < lo || value.get<double>() > hi) {
    Bad(at + key, "must be a number from " + json(lo).dump() + " to " + json(hi).dump() + ", got " + value.dump());
  }
  return value.get<double>();
}

int Integer(const json& section, const std::string& key, int fallback, int lo, int hi, const std::string& at = "") {
  if (!section.contains(key)) return fallback;
  const json& value = section[key];
  if (!value.is_number_integer() || value.get<long>() < lo || value.get<long>() > hi) {
    Bad(at + key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + value.dump());
  }
  return value.get<int>();
}

// ProcNode.Executor: where jobs run by default, and how to reach Slurm.
NodeConfig::Executor ParseExecutor(const json& section, const std::string& work_directory) {
  NodeConfig::Executor executor;
  if (!section.contains("Executor")) return executor;
  const json& e = section["Executor"];
  const std::string at = "Executor.";
  if (!e.is_object()) Bad("Executor", "must be an object: {\"Kind\": \"local\" | \"slurm\", ...}");
  static const std::set<std::string> kKnown{"Kind", "Partition", "GpuPartition", "Account", "Qos", "ExtraOptions", "Procnode",
                                            "WorkerConfig", "LogDirectory", "MaxSubmitted", "StartTimeoutSeconds",
                                            "PollSeconds", "SlurmConf", "TimeLimitSeconds", "CpusPerJob", "Submit"};
  for (const auto& [key, value] : e.items()) {
    if (kKnown.contains(key)) continue;
    std::string known;
    for (const auto& name : kKnown) known += (known.empty() ? "" : ", ") + name;
    Bad(at + key, "unknown key (known: " + known + ")");
  }
  executor.slurm = true;
  executor.kind = String(e, "Kind", "slurm", at);
  if (executor.kind != "local" && executor.kind != "slurm") Bad(at + "Kind", "must be \"local\" or \"slurm\"");
  executor.partition = String(e, "Partition", "", at);
  executor.gpu_partition = String(e, "GpuPartition", "", at);
  executor.account = String(e, "Account", "", at);
  executor.qos = String(e, "Qos", "", at);
  if (e.contains("ExtraOptions")) {
    if (!e["ExtraOptions"].is_array()) Bad(at + "ExtraOptions", "must be a list of sbatch options such as \"--exclusive\"");
    for (const auto& option : e["ExtraOptions"]) {
      if (!option.is_string() || option.get<std::string>().rfind("--", 0) != 0 ||
          option.get<std::string>().find_first_of("\n\r") != std::string::npos) {
        Bad(at + "ExtraOptions", "each must be one sbatch option starting with --, got " + option.dump());
      }
      executor.extra_options.push_back(option);
    }
  }
  executor.procnode = String(e, "Procnode", "/usr/bin/procnode", at);
  executor.worker_config = String(e, "WorkerConfig", "", at);
  if (executor.worker_config.empty() || executor.worker_config[0] != '/') {
    Bad(at + "WorkerConfig", "must be the absolute path, on the compute nodes, of the configuration of `procnode worker` "
                             "(job database and Orthanc URL: procnode worker --help)");
  }
  executor.log_directory = String(e, "LogDirectory", work_directory.empty() ? "" : work_directory + "/slurm", at);
  if (executor.log_directory.empty() || executor.log_directory[0] != '/') {
    Bad(at + "LogDirectory", "must be an absolute folder (batch scripts and logs), or set ProcNode.WorkDirectory");
  }
  for (const std::string* path : {&executor.procnode, &executor.worker_config, &executor.log_directory}) {
    if (path->find_first_of("\n\r'\"\\$`") != std::string::npos) Bad(at + "path", "paths must not hold quotes, $, ` or newlines");
  }
  executor.max_submitted = Integer(e, "MaxSubmitted", executor.max_submitted, 1, 100000, at);
  executor.start_timeout_seconds = Integer(e, "StartTimeoutSeconds", executor.start_timeout_seconds, 1, 30 * 86400, at);
  executor.poll_seconds = Number(e, "PollSeconds", executor.poll_seconds, 0.2, 3600, at);
  executor.slurm_conf = String(e, "SlurmConf", "", at);
  executor.time_limit_seconds = Integer(e, "TimeLimitSeconds", executor.time_limit_seconds, 60, 365 * 86400, at);
  executor.cpus_per_job = Integer(e, "CpusPerJob", executor.cpus_per_job, 1, 1024, at);
  if (e.contains("Submit")) {
    if (!e["Submit"].is_boolean()) Bad(at + "Submit", "must be true or false");
    executor.submit = e["Submit"].get<bool>();
  }
  return executor;
}

std::string HostName() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 && name[0] ? name : "procnode";
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

NodeConfig ParseNodeConfig(const std::string& orthanc_configuration_json, const EnvLookup& env) {
  json root;
  try {
    root = json::parse(orthanc_configuration_json);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
    throw Error(ErrorCode::kInvalidInput, std::string("Orthanc configuration is not JSON: ") + e.what());
  }
  const json section = root.contains("ProcNode") ? root["ProcNode"] : json::object();
  if (!section.is_object()) throw Error(ErrorCode::kInvalidInput, "ProcNode: must be an object");

  static const std::set<std::string> kKnown{
      "Database", "PhiVault", "Workers", "Gpu", "WorkDirectory", "NodeName", "LeaseSeconds",
      "HeartbeatSeconds", "MaxAttempts", "RetryBackoffSeconds", "PollSeconds", "ResultSeriesNumber", "ResultSeriesNumbers", "EarlyStart", "EarlyStartPollSeconds", "Audit",
      "Destinations", "RulesFile", "TestHooks", "Admins", "CompletenessMaxWaitSeconds", "DeliveryMaxAttempts",
      "DeliveryBackoffSeconds", "VaultRoles", "CleanPixelRules", "TrustedUserHeader", "AllowAnonymousAdministration",
      "DatabaseConnectTimeoutSeconds", "DatabaseStatementTimeoutSeconds", "OrthancId", "GpuWaitSeconds", "ToolsDirectory", "ViewerUrl", "Executor"};
  NodeConfig config;
  for (const auto& [key, value] : section.items()) {
    if (!kKnown.contains(key)) config.warnings.push_back("ProcNode." + key + ": unknown key, ignored");
  }
  config.database = env("PROCNODE_DATABASE").value_or(String(section, "Database", ""));
  config.phi_vault = env("PROCNODE_PHI_VAULT").value_or(String(section, "PhiVault", ""));
  if (config.database.empty()) {
    Bad("Database", "missing: set a PostgreSQL DSN (postgresql://user@host:port/db) in the "
                    "configuration or in PROCNODE_DATABASE");
  }
  config.workers = Integer(section, "Workers", config.workers, 0, 64);
  config.gpu = String(section, "Gpu", config.gpu);
  if (config.gpu != "auto" && config.gpu != "cpu" && config.gpu != "gpu") {
    Bad("Gpu", "must be \"auto\", \"cpu\" or \"gpu\", got \"" + config.gpu + "\"");
  }
  config.work_directory = String(section, "WorkDirectory", "");
  if (!config.work_directory.empty() && config.work_directory[0] != '/') Bad("WorkDirectory", "must be an absolute folder path");
  config.tools_directory = String(section, "ToolsDirectory", "");
  if (!config.tools_directory.empty() && config.tools_directory[0] != '/') Bad("ToolsDirectory", "must be an absolute folder path");
  config.node_name = String(section, "NodeName", HostName());
  config.orthanc_id = String(section, "OrthancId",
                             root.contains("Name") && root["Name"].is_string() ? root["Name"].get<std::string>() : "MyOrthanc");
  if (config.orthanc_id.empty()) Bad("OrthancId", "must not be empty");
  config.lease_seconds = Integer(section, "LeaseSeconds", config.lease_seconds, 2, 86400);
  config.gpu_wait_seconds = Integer(section, "GpuWaitSeconds", config.gpu_wait_seconds, 0, 86400);
  config.heartbeat_seconds = Integer(section, "HeartbeatSeconds", 0, 0, 86400);
  if (config.heartbeat_seconds == 0) config.heartbeat_seconds = std::max(1, config.lease_seconds / 3);
  if (config.heartbeat_seconds >= config.lease_seconds) {
    Bad("HeartbeatSeconds", "must be shorter than LeaseSeconds (" + std::to_string(config.lease_seconds) + ")");
  }
  config.max_attempts = Integer(section, "MaxAttempts", config.max_attempts, 1, 100);
  config.retry_backoff_seconds = Number(section, "RetryBackoffSeconds", config.retry_backoff_seconds, 0, 86400);
  config.poll_seconds = Number(section, "PollSeconds", config.poll_seconds, 0.05, 3600);
  if (section.contains("ResultSeriesNumber")) {
    const int first = Integer(section, "ResultSeriesNumber", 9001, 1, 2147483642);
    // Derived series take two numbers (an image and its field), Secondary Capture the next.
    config.result_series_numbers = {{"encapsulated-pdf", first}, {"seg", first + 1}, {"sr", first + 2}, {"derived", first + 3},
                                    {"sc", first + 5}};
  }
  if (section.contains("ResultSeriesNumbers")) {
    const json& numbers = section["ResultSeriesNumbers"];
    if (!numbers.is_object()) Bad("ResultSeriesNumbers", "must be an object of result kind -> series number");
    for (const auto& [kind, value] : numbers.items()) {
      if (!value.is_number_integer() || value.get<long>() < 1 || value.get<long>() > 2147483647) {
        Bad("ResultSeriesNumbers." + kind, "must be an integer from 1 to 2147483647, got " + value.dump());
      }
      config.result_series_numbers[kind] = value.get<int>();
    }
  }
  config.audit_target = String(section, "Audit", "");
  if (section.contains("EarlyStart")) {
    if (!section["EarlyStart"].is_boolean()) Bad("EarlyStart", "must be true or false");
    config.early_start = section["EarlyStart"].get<bool>();
  }
  config.early_start_poll_seconds = Number(section, "EarlyStartPollSeconds", config.early_start_poll_seconds, 0.05, 60);
  config.completeness_max_wait_seconds =
      Integer(section, "CompletenessMaxWaitSeconds", config.completeness_max_wait_seconds, 0, 86400);
  config.admins = UserNames(section, "Admins");
  config.viewer_url = String(section, "ViewerUrl", "");
  if (!config.viewer_url.empty()) {
    const auto& url = config.viewer_url;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0 && url[0] != '/') {
      Bad("ViewerUrl", "must be an http:// or https:// URL or a path starting with /");
    }
    if (url.find("{StudyInstanceUID}") == std::string::npos) {
      Bad("ViewerUrl", "must contain {StudyInstanceUID} (and may contain {SeriesInstanceUID})");
    }
  }
  if (section.contains("CleanPixelRules")) {
    if (!section["CleanPixelRules"].is_array()) Bad("CleanPixelRules", "must be a list of rules");
    config.clean_pixel_rules_json = section["CleanPixelRules"].dump();
  }
  config.vault_roles = UserNames(section, "VaultRoles");
  if (section.contains("Destinations")) {
    const json& destinations = section["Destinations"];
    if (!destinations.is_object()) Bad("Destinations", "must be an object of named destinations");
    const json modalities = root.contains("DicomModalities") && root["DicomModalities"].is_object() ? root["DicomModalities"]
                                                                                                     : json::object();
    const bool in_database = root.value("DicomModalitiesInDatabase", false);
    for (const auto& [name, value] : destinations.items()) {
      const std::string at = "Destinations." + name;
      NodeConfig::Destination destination;
      const std::string kind = value.is_object() && value.contains("Kind") && value["Kind"].is_string()
                                   ? value["Kind"].get<std::string>() : "dicom";
      destination.kind = kind;
      if (kind == "dicom") {
        if (value.is_string()) {
          destination.target = value.get<std::string>();
        } else if (value.is_object() && value.contains("Modality") && value["Modality"].is_string()) {
          destination.target = value["Modality"].get<std::string>();
        } else {
          Bad(at, "must name an Orthanc modality: \"alias\" or {\"Modality\": \"alias\"}");
        }
        if (!in_database && !modalities.contains(destination.target)) {
          Bad(at, "Orthanc modality \"" + destination.target + "\" is not in DicomModalities");
        }
      } else if (kind == "dicomweb") {
        if (!value.contains("Server") || !value["Server"].is_string() || value["Server"].get<std::string>().empty()) {
          Bad(at + ".Server", "must name a server of the DICOMweb plugin's DicomWeb.Servers");
        }
        destination.target = value["Server"];
        const json& web = root.contains("DicomWeb") ? root["DicomWeb"] : json::object();
        if (web.is_object() && web.contains("Servers") && web["Servers"].is_object() &&
            !web["Servers"].contains(destination.target) && !web.value("ServersInDatabase", false)) {
          Bad(at + ".Server", "\"" + destination.target + "\" is not in DicomWeb.Servers");
        }
      } else if (kind == "bids") {
        if (!value.contains("Root") || !value["Root"].is_string() || value["Root"].get<std::string>().empty() ||
            value["Root"].get<std::string>()[0] != '/') {
          Bad(at + ".Root", "must be an absolute folder path, the BIDS dataset's root");
        }
        destination.target = value["Root"];
        destination.dataset_name = value.contains("Name") && value["Name"].is_string() ? value["Name"].get<std::string>()
                                                                                        : name;
        if (value.contains("Group")) {
          if (!value["Group"].is_string() || getgrnam(value["Group"].get<std::string>().c_str()) == nullptr) {
            Bad(at + ".Group", "must name a group of this system");
          }
          destination.group = value["Group"];
        }
        auto mode = [&](const char* key, unsigned fallback) {
          if (!value.contains(key)) return fallback;
          const std::string text = value[key].is_string() ? value[key].get<std::string>() : "";
          char* end = nullptr;
          const unsigned long parsed = std::strtoul(text.c_str(), &end, 8);
          if (text.empty() || *end != '\0' || parsed > 0777) Bad(at + "." + key, "must be an octal mode such as \"0640\"");
          return static_cast<unsigned>(parsed);
        };
        destination.file_mode = mode("FileMode", destination.file_mode);
        destination.dir_mode = mode("DirectoryMode", destination.dir_mode);
      } else {
        Bad(at + ".Kind", "must be \"dicom\", \"dicomweb\" or \"bids\"");
      }
      config.destinations.push_back(name);
      config.destination_kinds[name] = destination;
    }
  }
  config.executor = ParseExecutor(section, config.work_directory);
  config.delivery_max_attempts = Integer(section, "DeliveryMaxAttempts", config.delivery_max_attempts, 1, 100);
  config.delivery_backoff_seconds = Number(section, "DeliveryBackoffSeconds", config.delivery_backoff_seconds, 0, 86400);
  config.rules_file = String(section, "RulesFile", "");
  config.database_connect_timeout_seconds =
      Integer(section, "DatabaseConnectTimeoutSeconds", config.database_connect_timeout_seconds, 1, 600);
  config.database_statement_timeout_seconds =
      Integer(section, "DatabaseStatementTimeoutSeconds", config.database_statement_timeout_seconds, 1, 86400);

  // Who is asking: only what Orthanc verified (its HTTP authentication with registered users), or
  // a header that an authorization plugin or proxy in front of Orthanc sets and that the admin
  // explicitly trusts. Anything else is an unverified caller.
  // Orthanc (since 1.5.8): AuthenticationEnabled, when not set, follows RemoteAccessAllowed.
  auto flag = [&](const char* key, bool fallback) {
    return root.contains(key) && root[key].is_boolean() ? root[key].get<bool>() : fallback;
  };
  const bool authentication = flag("AuthenticationEnabled", flag("RemoteAccessAllowed", false));
  const bool users = root.contains("RegisteredUsers") && root["RegisteredUsers"].is_object() &&
                     !root["RegisteredUsers"].empty();
  config.orthanc_authentication = authentication && users;
  config.trusted_user_header = String(section, "TrustedUserHeader", "");
  for (auto& c : config.trusted_user_header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (config.trusted_user_header == "authorization") {
    Bad("TrustedUserHeader", "must name a header that an authorization plugin or proxy sets, not Authorization");
  }
  if (section.contains("AllowAnonymousAdministration")) {
    if (!section["AllowAnonymousAdministration"].is_boolean()) Bad("AllowAnonymousAdministration", "must be true or false");
    config.allow_anonymous_administration = section["AllowAnonymousAdministration"].get<bool>();
  }
  if (config.allow_anonymous_administration) {
    config.warnings.push_back("ProcNode.AllowAnonymousAdministration is true: callers nobody verified may change rules "
                              "and jobs (a lab setting; never in a hospital)");
  }
  if (!config.orthanc_authentication && config.trusted_user_header.empty() &&
      (!config.admins.empty() || !config.vault_roles.empty())) {
    config.warnings.push_back("ProcNode.Admins/VaultRoles name users, but nothing verifies who a caller is (Orthanc's "
                              "AuthenticationEnabled with RegisteredUsers is off, no TrustedUserHeader): rule and job "
                              "changes and re-identification are refused to everyone");
  }
  if (section.contains("TestHooks")) {
    const json& hooks = section["TestHooks"];
    if (!hooks.is_object()) Bad("TestHooks", "must be an object");
    config.test_pause_after_stage = String(hooks, "PauseAfterStage", "");
    config.test_pause_seconds = Number(hooks, "PauseSeconds", 0, 0, 3600);
    config.warnings.push_back("ProcNode.TestHooks is set: for tests only");
  }
  return config;
}

}  // namespace procnode
