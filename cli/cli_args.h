// What both halves of the procnode command line share (the lean program, and the commands module
// it loads for everything but conversion): arguments, the usage text, file writing, and the
// mapping of errors to exit codes (design doc: 0 success, 2 bad input naming the file and the
// reason, 1 anything else).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace procnode::cli {

inline constexpr const char* kUsage = R"(usage:
  procnode convert DICOM_DIR OUT.nii[.gz] [--sidecar OUT.json]
  procnode convert DICOM_DIR --outdir DIR
      DICOM series to NIfTI-1 with dcm2niix's conventions (one series, or every series found)
  procnode rules validate FILE.json
  procnode rules test FILE.json DICOM_DIR [--calling-aet AET] [--called-aet AET]
      which rules fire on that study, and for each that does not, the first condition that failed
  procnode process PROCESSOR DICOM_DIR --out DIR [--param k=v ...] [--device auto|cpu|gpu]
      the folder's largest series the processor accepts -> measurements.json, labels.nii.gz (when the
      processor labels voxels), report.pdf, report-pdf.dcm (Encapsulated PDF)
  procnode processors                the processors, their inputs and parameters (JSON Schema)
  procnode anonymize IN_DIR OUT_DIR --project NAME [--options a,b] [--pixel-rules RULES.json] [--secret-env VAR]
      PS3.15 Annex E de-identification (options: retain-safe-private, retain-uids,
      retain-device-identity, retain-institution-identity, retain-patient-characteristics,
      full-dates | modified-dates, clean-descriptors, clean-structured-content, clean-graphics,
      allow-recognizable-features); the secret comes from $PROCNODE_ANONYMIZATION_SECRET;
      --vault DSN keeps each identity sealed (keys: $PROCNODE_VAULT_KEYS "id:64hex[,id:64hex]")
  procnode reidentify --vault DSN --project P --pseudonym PN... --who NAME --why REASON
      the original identity and UIDs, for the vault role; every access is audited
  procnode migrate --db DSN          apply the job database migrations
  procnode jobs --db DSN [--state S] [--limit N]
  procnode status                    build, CUDA and GPU
  procnode version
Exit codes: 0 success, 2 bad input, 1 other failure.
)";

// Positional arguments and --key value options.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::vector<std::string> params;  // every --param k=v, in order

  std::optional<std::string> Option(const std::string& key) const {
    auto it = options.find(key);
    return it == options.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::string Required(const std::string& key) const {
    auto value = Option(key);
    if (!value) throw Error(ErrorCode::kInvalidInput, "missing --" + key);
    return *value;
  }
};

Args Parse(int argc, char** argv);

// Writes `bytes` to `path`; throws kUnavailable naming the path when it cannot.
void WriteFile(const std::filesystem::path& path, const std::string& bytes);

// Runs `command`, printing any error as "procnode: <message>" and returning its exit code.
int Guarded(const std::function<int()>& command);

}  // namespace procnode::cli
