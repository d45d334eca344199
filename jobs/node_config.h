// The node's configuration: the "ProcNode" section of Orthanc's configuration (design doc,
// interface contract), with secrets optionally from the environment.
//
// ParseNodeConfig() validates every key and says exactly what is wrong ("ProcNode.Workers: must
// be an integer from 0 to 64, got \"two\""); unknown keys are reported as warnings (a misspelt
// key must not pass silently). Environment: PROCNODE_DATABASE and PROCNODE_PHI_VAULT override
// Database and PhiVault. Pure; thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace procnode {

struct NodeConfig {
  std::string database;        // job database DSN (required)
  std::string phi_vault;       // PHI vault DSN (issue 4); optional for now
  int workers = 2;
  std::string gpu = "auto";    // auto | cpu | gpu
  std::string work_directory;  // scratch space for later stages; empty: none needed yet
  std::string node_name;       // default: host name
  int lease_seconds = 60;
  int heartbeat_seconds = 0;   // 0: a third of the lease
  int max_attempts = 3;
  double retry_backoff_seconds = 10;
  double poll_seconds = 1;
  int result_series_number = 9001;
  int completeness_max_wait_seconds = 600;  // how long a study whose series say they are incomplete waits
  std::vector<std::string> admins;            // users allowed to change rules and jobs; empty: anyone
  std::string clean_pixel_rules_json;         // ProcNode.CleanPixelRules (JSON list), for anonymized routes
  std::vector<std::string> vault_roles;       // users allowed to re-identify (POST /procnode/reidentify); empty: nobody
  std::vector<std::string> destinations;      // names of ProcNode.Destinations
  std::map<std::string, std::string> destination_modalities;  // name -> Orthanc DicomModalities alias
  int delivery_max_attempts = 5;              // C-STORE attempts per destination before the dead letter
  double delivery_backoff_seconds = 30;       // doubled per failed attempt
  // Test hooks (never set in production): pause this long after the named pipeline stage.
  std::string test_pause_after_stage;
  double test_pause_seconds = 0;

  std::vector<std::string> warnings;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// `orthanc_configuration_json` is Orthanc's whole configuration. Throws Error(kInvalidInput).
NodeConfig ParseNodeConfig(const std::string& orthanc_configuration_json, const EnvLookup& env);

// Reads the real process environment.
std::optional<std::string> ProcessEnv(const std::string& name);

}  // namespace procnode
