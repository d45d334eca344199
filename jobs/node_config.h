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
  // Scratch space and kept files: external tools' run folders, and jobs/<id>/ with the files a
  // job made besides its DICOM results (derived images, tool logs). Empty: the system's temporary
  // folder for runs, and such files are listed on the job but not kept.
  std::string work_directory;
  std::string tools_directory;  // ProcNode.ToolsDirectory: external tools (each NAME/tool.json); empty: none
  std::string node_name;       // default: host name
  // Which Orthanc this node serves, when several share one job database (ProcNode.OrthancId;
  // default: Orthanc's own "Name"). Give each Orthanc its own.
  std::string orthanc_id;
  int lease_seconds = 60;
  int gpu_wait_seconds = 60;   // a CPU worker leaves a GPU-preferring job this long to a live GPU worker
  int heartbeat_seconds = 0;   // 0: a third of the lease
  int max_attempts = 3;
  double retry_backoff_seconds = 10;
  double poll_seconds = 1;
  // Series numbers of result objects by kind (ProcNode.ResultSeriesNumbers, e.g. {"seg": 9102});
  // ProcNode.ResultSeriesNumber N (first wave) numbers the report N, the SEG N+1 and the SR N+2.
  // A kind not given takes its writer's default. Kinds are checked by the node against its writers.
  std::map<std::string, int> result_series_numbers;
  // Series-level rules start as soon as a series is complete by its own count, before StableAge
  // (ProcNode.EarlyStart); a series is looked at every early_start_poll_seconds while it arrives.
  bool early_start = true;
  double early_start_poll_seconds = 0.25;
  int completeness_max_wait_seconds = 600;  // how long a study whose series say they are incomplete waits
  std::vector<std::string> admins;            // users allowed to change rules and jobs; empty: anyone
  std::string clean_pixel_rules_json;         // ProcNode.CleanPixelRules (JSON list), for anonymized routes
  std::vector<std::string> vault_roles;       // users allowed to re-identify (POST /procnode/reidentify); empty: nobody
  std::vector<std::string> destinations;      // names of ProcNode.Destinations
  // Each destination: "dicom" (C-STORE to the Orthanc DicomModalities alias `target`), "dicomweb"
  // (STOW-RS through the DICOMweb plugin's DicomWeb.Servers entry `target`) or "bids" (a BIDS
  // dataset under the folder `target`).
  struct Destination {
    std::string kind = "dicom";  // dicom | dicomweb | bids
    std::string target;          // modality alias, DICOMweb server name, or BIDS root folder
    std::string dataset_name;    // bids: dataset_description.json Name
    std::string group;           // bids: group the files belong to ("" : the process's)
    unsigned file_mode = 0640, dir_mode = 0750;  // bids: read-only for the group
  };
  std::map<std::string, Destination> destination_kinds;  // every destination by name
  // ProcNode.Executor: the default executor of jobs ("local": this node's and standalone workers;
  // "slurm": a batch job per procnode job running `procnode worker --once ID` on a compute node),
  // and Slurm's settings. A rule's action may choose either ("executor"); "slurm" needs this section.
  struct Executor {
    bool slurm = false;            // the section is there: Slurm can be used
    std::string kind = "local";    // default for rules that do not say
    std::string partition, gpu_partition, account, qos;
    std::vector<std::string> extra_options;  // more sbatch options, each "--name[=value]"
    std::string procnode = "/usr/bin/procnode";  // the program on compute nodes
    std::string worker_config;     // its --config on compute nodes (database, Orthanc URL; no secret in the script)
    std::string log_directory;     // batch scripts and their output (default WorkDirectory/slurm)
    int max_submitted = 50;        // batch jobs of this node in Slurm at once; the rest wait in procnode's queue
    int start_timeout_seconds = 3600;  // a batch job still pending after this is cancelled and retried
    double poll_seconds = 5;       // squeue at most this often (one call for all tracked jobs)
    std::string slurm_conf;        // SLURM_CONF for sbatch, squeue, scontrol, scancel ("" : Slurm's default)
    int time_limit_seconds = 3600; // --time of processors without a limit of their own
    int cpus_per_job = 2;          // --cpus-per-task of processors without their own
    // Whether this process submits and follows the Slurm jobs. false on an Orthanc whose host has
    // no Slurm client: a `procnode worker` on a submit host, with the same Executor section in its
    // configuration, does it for that Orthanc.
    bool submit = true;
  } executor;
  int delivery_max_attempts = 5;              // C-STORE attempts per destination before the dead letter
  double delivery_backoff_seconds = 30;       // doubled per failed attempt
  std::string audit_target;  // ProcNode.Audit: syslog | unix:PATH | udp://HOST:PORT | file:PATH; "" none
  // ProcNode.ViewerUrl: where the admin page links a study or series in a viewer (OHIF, a PACS
  // viewer), an http(s) URL or a path with {StudyInstanceUID} and optionally {SeriesInstanceUID}
  // (e.g. "/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}"); "" : Orthanc Explorer only.
  std::string viewer_url;
  std::string rules_file;  // ProcNode.RulesFile: the rule set saved at start when none was saved yet
  int database_connect_timeout_seconds = 5;     // libpq connect_timeout, unless the DSN sets one
  int database_statement_timeout_seconds = 60;  // per statement, so a stalled server frees its caller
  // Identity (who a REST caller is). orthanc_authentication: Orthanc's AuthenticationEnabled is
  // true with RegisteredUsers, so the user of an Authorization: Basic header was verified by
  // Orthanc. trusted_user_header (lower case): a header set by an authorization plugin or proxy the
  // admin trusts. Without either, callers are unverified: no re-identification, and rule or job
  // changes only when allow_anonymous_administration (a lab setting) is true.
  bool orthanc_authentication = false;
  std::string trusted_user_header;
  bool allow_anonymous_administration = false;
  // A standalone `procnode worker`: runs jobs only (no intake, no deliveries: the Orthanc node
  // that enqueued the job does those); set by the worker command, not by ProcNode.
  bool standalone_worker = false;
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
