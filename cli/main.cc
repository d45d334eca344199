// procnode: the command-line program. Links the same libraries as the plugin, for offline use,
// scripts and benchmarks. Exit codes (design doc): 0 success, 2 bad input (the message names the
// file and the reason), 1 anything else.
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/oflog/oflog.h>

#include <malloc.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "anonymizer/deidentify.h"
#include "anonymizer/leak_checker.h"
#include "anonymizer/profile_table.h"
#include "anonymizer/vault.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/version.h"
#include "jobs/job_json.h"
#include "jobs/job_queue.h"
#include "jobs/migrations.h"
#include "nifti/series_to_nifti.h"
#include "pipeline/processing_pipeline.h"
#include "pipeline/routing_inputs.h"
#include "processors/dicom_io.h"
#include "processors/folder_source.h"
#include "processors/processor.h"
#include "reports/key_images.h"
#include "processors/volume_stats.h"
#include "routing/rule_set.h"
#include "routing/rules.h"

namespace procnode {
namespace {

constexpr const char* kUsage = R"(usage:
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

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
      if (i + 1 >= argc) throw Error(ErrorCode::kInvalidInput, arg + " needs a value");
      if (arg == "--param") {
        args.params.push_back(argv[++i]);
      } else {
        args.options[arg.substr(2)] = argv[++i];
      }
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

class FolderResultSink : public ResultSink {
 public:
  explicit FolderResultSink(std::filesystem::path folder) : folder_(std::move(folder)) {}
  std::string Store(const std::string& bytes, const std::string& stem) override {
    const auto path = folder_ / (stem + ".dcm");
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

 private:
  std::filesystem::path folder_;
};

void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw Error(ErrorCode::kUnavailable, path.string() + ": cannot be written");
}

// "k=v" -> {"k": v}, v read as JSON when it parses (numbers, true, false), as a string otherwise.
nlohmann::json ParseParams(const std::vector<std::string>& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& param : params) {
    const auto eq = param.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(ErrorCode::kInvalidInput, "--param '" + param + "': expected NAME=VALUE");
    const std::string value = param.substr(eq + 1);
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    out[param.substr(0, eq)] = parsed.is_discarded() || parsed.is_object() || parsed.is_array() ? nlohmann::json(value) : parsed;
  }
  return out;
}

int Process(const Args& args) {
  if (args.positional.size() != 3) throw Error(ErrorCode::kInvalidInput, "process needs PROCESSOR DICOM_DIR");
  const Processor& processor = GetProcessor(args.positional[1]);
  const nlohmann::json parameters = ParseParams(args.params);
  ResolveParameters(processor.Info(), parameters);  // bad parameters fail before any reading
  const std::filesystem::path out = args.Required("out");
  std::filesystem::create_directories(out);
  FolderStudySource source(args.positional[2]);
  for (const auto& skipped : source.skipped()) std::cerr << "skipped " << skipped << "\n";
  FolderResultSink sink(out);
  PipelineContext ctx;
  ctx.device = ParseDevicePreference(args.Option("device").value_or("auto"));
  ctx.font_path = PROCNODE_FONT;
  ctx.progress = [](double fraction, const std::string& message) {
    std::cerr << "\r[" << static_cast<int>(fraction * 100) << "%] " << message << "\033[K" << std::flush;
  };
  const auto inputs = InputInstances(source.ListSeries(""));
  const Rule rule{.id = "cli", .pipeline = processor.Info().name, .pipeline_version = processor.Info().version,
                  .parameters_json = parameters.dump()};
  const Provenance provenance{.job = "cli", .rule = "command line", .node = "local",
                              .study_id = std::filesystem::path(args.positional[2]).filename().string(),
                              .idempotency_key = IdempotencyKey("cli", inputs, rule)};
  const auto result = RunPipeline(processor.Info().name, parameters, source, sink, ctx, provenance);
  std::cerr << "\n";
  WriteFile(out / "report.pdf", result.pdf);
  if (!result.output.labels.empty()) {
    WriteNiftiFile((out / "labels.nii.gz").string(), LabelNiftiImage(result.volume, result.output.labels), true);
    // Overlays for a quick look: the axial slice and coronal row with the most labelled voxels.
    const int label_count = static_cast<int>(result.output.label_names.size());
    for (const auto& [plane, name] : {std::pair{ViewPlane::kAxial, "overlay-axial.png"}, std::pair{ViewPlane::kCoronal, "overlay-coronal.png"}}) {
      KeyImageSpec spec{.plane = plane, .index = BusiestIndex(result.volume, result.output.labels, plane),
                        .colours = LabelPalette(label_count)};
      WriteFile(out / name, EncodePng(RenderKeyImage(result.volume, result.output.labels, spec)));
    }
  }
  WriteFile(out / "measurements.json", result.summary.dump(2) + "\n");
  std::cout << result.summary["measurements"].dump(2) << "\n";
  return 0;
}

// `path` with `suffix` inserted before its extension (.nii, .nii.gz or .json).
std::string WithSuffix(const std::string& path, const std::string& suffix) {
  for (const char* extension : {".nii.gz", ".nii", ".json"}) {
    const std::string ext = extension;
    if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return path.substr(0, path.size() - ext.size()) + suffix + ext;
    }
  }
  return path + suffix;
}

// Converts one series; writes the image and, when `sidecar` is not empty, the JSON sidecar. A
// series of several parts (echoes, phase, field map) gets one file per part, the part's suffix
// (dcm2niix's "_e2", "_ph", ...) inserted before the extension.
void ConvertOne(StudySource& source, const SeriesRef& series, const std::string& output, const std::string& sidecar) {
  const auto parts = ConvertSeriesToNifti(source, series);
  const bool gzip = output.size() > 3 && output.compare(output.size() - 3, 3, ".gz") == 0;
  for (const auto& part : parts) {
    const std::string image_path = WithSuffix(output, part.suffix);
    WriteNiftiFile(image_path, part.image, gzip);
    if (!sidecar.empty()) WriteFile(WithSuffix(sidecar, part.suffix), part.sidecar.dump(2) + "\n");
    for (const auto& warning : part.warnings) std::cerr << "warning: " << image_path << ": " << warning << "\n";
    if (parts.size() > 1) std::cout << image_path << "\n";
  }
}

// De-identifies every DICOM file under IN_DIR into OUT_DIR/<pseudonym>/<study>/<series>/<sop>.dcm
// (remapped UIDs: no PHI in names), checks every output with the leak checker against the PHI of
// its input, and prints a summary without PHI. Exit 2 when some input was refused, 1 on a leak.
int Anonymize(const Args& args) {
  if (args.positional.size() != 3) throw Error(ErrorCode::kInvalidInput, "anonymize needs IN_DIR OUT_DIR");
  // Objects come and go in equal sizes here: keep freed buffers on the heap for the next one
  // instead of mapping and zeroing fresh pages for every object.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
  DeidentifyOptions options;
  options.project = args.Required("project");
  const std::string secret_variable = args.Option("secret-env").value_or("PROCNODE_ANONYMIZATION_SECRET");
  const char* secret = std::getenv(secret_variable.c_str());
  if (secret == nullptr || std::string(secret).empty()) {
    throw Error(ErrorCode::kInvalidInput, "the project secret is read from $" + secret_variable + ", which is not set");
  }
  options.secret = secret;
  ApplyOptionNames(args.Option("options").value_or(""), options);
  if (const auto rules = args.Option("pixel-rules")) {
    std::ifstream in(*rules);
    if (!in) throw Error(ErrorCode::kInvalidInput, *rules + ": cannot be read");
    options.pixel_rules = ParsePixelRules(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  // With a vault: each patient's identity and UID map, sealed, for re-identification later.
  std::unique_ptr<PhiVault> vault;
  if (const auto dsn = args.Option("vault")) {
    const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
    if (keys == nullptr) throw Error(ErrorCode::kInvalidInput, "--vault needs the sealing keys in $PROCNODE_VAULT_KEYS");
    vault = std::make_unique<PhiVault>(*dsn, ParseVaultKeys(keys));
    vault->Migrate();
  }
  const std::filesystem::path in = args.positional[1], out = args.positional[2];
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(in)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  nlohmann::json refused = nlohmann::json::array(), skipped = nlohmann::json::array();
  std::size_t written = 0, leaks = 0;
  std::set<std::string> pseudonyms;
  struct Item {
    enum { kWritten, kNotDicom, kRefused, kLeak } state = kNotDicom;
    std::string reason, bytes;
    std::filesystem::path target;
    DeidentifyOutcome outcome;
  };
  // Batches: de-identified and leak-checked in parallel, identities sealed in the vault, then written.
  constexpr std::size_t kBatch = 256;
  for (std::size_t first = 0; first < files.size(); first += kBatch) {
    const std::size_t count = std::min(kBatch, files.size() - first);
    std::vector<Item> items(count);
    ParallelFor(count, [&](std::size_t i) {
      const auto& path = files[first + i];
      Item& item = items[i];
      try {
      std::unique_ptr<DcmFileFormat> file;
      try {
        file = ReadDicomFile(path.string(), path.string());
      } catch (const Error& e) {
        item.reason = e.what();
        return;
      }
      try {
        item.outcome = Deidentify(*file, options, path.string());
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kInvalidInput) throw;
        item.state = Item::kRefused;
        item.reason = e.what();
        return;
      }
      DcmDataset& ds = *file->getDataset();
      auto get = [&](const DcmTagKey& tag) {
        OFString value;
        ds.findAndGetOFString(tag, value);
        return std::string(value.c_str());
      };
      item.target = out / item.outcome.pseudonym / get(DCM_StudyInstanceUID) / get(DCM_SeriesInstanceUID) /
                    (get(DCM_SOPInstanceUID) + ".dcm");
      // The gate: nothing of the input's PHI in the object that will be written, or in its name.
      const auto terms = PhiTerms(item.outcome.identity, item.outcome.phi_terms);
      auto hits = ScanDataset(ds, terms, item.target.filename().string());
      const auto name_hits = ScanFileName(item.target.string().substr(out.string().size()), terms);
      hits.insert(hits.end(), name_hits.begin(), name_hits.end());
      if (!hits.empty()) {
        item.state = Item::kLeak;
        for (const auto& hit : hits) item.reason += "PHI term #" + std::to_string(hit.term) + " at " + hit.where + "\n";
        return;
      }
      item.bytes = WriteDeidentified(*file, path.string());
      item.state = Item::kWritten;
      } catch (const Error& e) {
        // One object that cannot be de-identified or written (e.g. a transfer syntax DCMTK cannot
        // write) is reported by name; the others go on.
        item.state = Item::kRefused;
        item.reason = e.what();
      }
    });
    if (vault) {
      std::map<std::string, std::pair<PatientIdentity, std::map<std::string, std::string>>> patients;
      for (const auto& item : items) {
        if (item.state != Item::kWritten) continue;
        auto& patient = patients[item.outcome.pseudonym];
        patient.first = item.outcome.identity;
        patient.second.insert(item.outcome.uid_map.begin(), item.outcome.uid_map.end());
      }
      for (const auto& [pseudonym, patient] : patients) vault->Store(options.project, pseudonym, patient.first, patient.second, "cli");
    }
    std::set<std::filesystem::path> folders;
    for (const auto& item : items) {
      if (item.state == Item::kWritten) folders.insert(item.target.parent_path());
    }
    for (const auto& folder : folders) std::filesystem::create_directories(folder);
    ParallelFor(count, [&](std::size_t i) {
      if (items[i].state == Item::kWritten) WriteFile(items[i].target, items[i].bytes);
    });
    for (std::size_t i = 0; i < count; ++i) {
      const Item& item = items[i];
      const std::string path = files[first + i].string();
      switch (item.state) {
        case Item::kWritten:
          ++written;
          pseudonyms.insert(item.outcome.pseudonym);
          break;
        case Item::kNotDicom:
          skipped.push_back({{"file", path}, {"reason", item.reason}});
          break;
        case Item::kRefused:
          refused.push_back({{"file", path}, {"reason", item.reason}});
          break;
        case Item::kLeak:
          std::cerr << "LEAK (not written): " << item.reason;
          ++leaks;
          break;
      }
    }
  }
  std::cout << nlohmann::json{{"written", written},
                              {"patients", pseudonyms.size()},
                              {"refused", refused},
                              {"not_dicom", skipped.size()},
                              {"leaks", leaks},
                              {"profile", std::string("PS3.15 E.1-1 ") + ProfileTable().edition}}
                   .dump(2)
            << "\n";
  if (leaks > 0) return 1;
  return refused.empty() ? 0 : 2;
}

// Re-identification for the vault role (whoever holds the vault's credentials and keys), audited.
int Reidentify(const Args& args) {
  const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
  if (keys == nullptr) throw Error(ErrorCode::kInvalidInput, "the vault's keys are read from $PROCNODE_VAULT_KEYS, which is not set");
  PhiVault vault(args.Required("vault"), ParseVaultKeys(keys));
  const auto found = vault.Reidentify(args.Required("project"), args.Required("pseudonym"), args.Required("who"), args.Required("why"));
  nlohmann::json uids = nlohmann::json::object();
  for (const auto& [remapped, original] : found.uids) uids[remapped] = original;
  const auto& id = found.identity;
  std::cout << nlohmann::json{{"patient_name", id.patient_name}, {"patient_id", id.patient_id}, {"birth_date", id.birth_date},
                              {"sex", id.sex}, {"accession_number", id.accession_number}, {"study_date", id.study_date},
                              {"uids", uids}}
                   .dump(2)
            << "\n";
  return 0;
}

int Convert(const Args& args) {
  if (args.positional.size() < 2) throw Error(ErrorCode::kInvalidInput, "convert needs DICOM_DIR");
  FolderStudySource source(args.positional[1]);
  for (const auto& skipped : source.skipped()) std::cerr << "skipped " << skipped << "\n";
  const auto series = source.ListSeries("");
  if (series.empty()) throw Error(ErrorCode::kInvalidInput, args.positional[1] + ": no DICOM series found");
  if (const auto outdir = args.Option("outdir")) {
    std::filesystem::create_directories(*outdir);
    int failed = 0;
    std::set<std::string> used;
    for (const auto& one : series) {
      try {
        for (const auto& conversion : ConvertSeriesToNifti(source, one)) {
          std::string stem = NiftiFileStem(conversion);
          for (int n = 2; used.contains(stem); ++n) stem = NiftiFileStem(conversion) + "_" + std::to_string(n);
          used.insert(stem);
          const auto base = std::filesystem::path(*outdir) / stem;
          WriteNiftiFile(base.string() + ".nii.gz", conversion.image, true);
          WriteFile(base.string() + ".json", conversion.sidecar.dump(2) + "\n");
          std::cout << base.string() << ".nii.gz\n";
        }
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kInternal) throw;
        ++failed;
        std::cerr << "procnode: " << e.what() << "\n";
      }
    }
    return failed == 0 ? 0 : 2;
  }
  if (args.positional.size() != 3) throw Error(ErrorCode::kInvalidInput, "convert needs OUT.nii[.gz] or --outdir DIR");
  if (series.size() != 1) {
    throw Error(ErrorCode::kInvalidInput, args.positional[1] + ": holds " + std::to_string(series.size()) +
                                              " series; use --outdir DIR to convert each");
  }
  ConvertOne(source, series[0], args.positional[2], args.Option("sidecar").value_or(""));
  return 0;
}

int Rules(const Args& args) {
  if (args.positional.size() < 3 || (args.positional[1] != "validate" && args.positional[1] != "test")) {
    throw Error(ErrorCode::kInvalidInput, "rules needs: validate FILE, or test FILE DICOM_DIR");
  }
  const std::string& path = args.positional[2];
  const auto parsed = ParseRuleSet(ReadFileBytes(path), DefaultVocabulary());
  if (!parsed.rule_set) {
    for (const auto& error : parsed.errors) {
      std::cerr << path << ": " << (error.pointer.empty() ? "/" : error.pointer) << ": " << error.reason << "\n";
    }
    return 2;
  }
  if (args.positional[1] == "validate") {
    std::cout << path << ": valid, " << parsed.rule_set->rules.size() << " rule(s)\n";
    return 0;
  }
  if (args.positional.size() != 4) throw Error(ErrorCode::kInvalidInput, "rules test needs FILE and DICOM_DIR");
  FolderStudySource source(args.positional[3]);
  StudyAttributes study = ReadStudyAttributes(source, args.positional[3]);
  study.calling_aet = args.Option("calling-aet").value_or("");
  study.called_aet = args.Option("called-aet").value_or("");
  const auto evaluations = EvaluateRuleSet(*parsed.rule_set, study);
  for (const auto& e : evaluations) {
    std::cout << (e.fired ? "FIRES   " : "-       ") << e.rule_id << ": " << e.why << "\n";
    if (e.first_failure) {
      std::cout << "        first failed condition " << e.first_failure->pointer << ": " << e.first_failure->text
                << " (value " << e.first_failure->actual << ", " << e.first_failure->outcome << ")\n";
    }
  }
  return 0;
}

int Run(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  if (args.positional.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string& command = args.positional[0];
  if (command == "version") {
    std::cout << "procnode " << kVersion << "\n";
    return 0;
  }
  if (command == "status") {
    const GpuStatus gpu = ProbeGpu();
    std::cout << nlohmann::json{{"version", kVersion}, {"build", {{"cuda", kCudaCompiledIn}}},
                                {"gpu", {{"found", gpu.found}, {"devices", gpu.device_count},
                                         {"name", gpu.name}, {"reason", gpu.reason}}}}.dump(2)
              << "\n";
    return 0;
  }
  if (command == "migrate") {
    const auto report = ApplyMigrations(args.Required("db"), JobDbMigrations());
    std::cout << "job database schema at version " << report.to_version << " (" << report.applied.size()
              << " applied)\n";
    return 0;
  }
  if (command == "jobs") {
    PgJobQueue queue(args.Required("db"), {});
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& job : queue.List(args.Option("state"), std::stoi(args.Option("limit").value_or("100")))) {
      jobs.push_back(JobToJson(job));
    }
    std::cout << jobs.dump(2) << "\n";
    return 0;
  }
  if (command == "process") return Process(args);
  if (command == "processors") {
    nlohmann::json list = nlohmann::json::array();
    for (const Processor* p : Processors()) list.push_back(ProcessorJson(p->Info()));
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  if (command == "convert") return Convert(args);
  if (command == "anonymize") return Anonymize(args);
  if (command == "reidentify") return Reidentify(args);
  if (command == "rules") return Rules(args);
  std::cerr << "unknown command '" << command << "'\n" << kUsage;
  return 2;
}

}  // namespace
}  // namespace procnode

int main(int argc, char** argv) {
  // procnode reports unreadable files itself, naming them; DCMTK's own warnings would only repeat it.
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  // Slices are large, short-lived buffers: keep them in mmap so freed ones go back to the system
  // at once (glibc would otherwise raise its threshold and keep them on the heap).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  try {
    return procnode::Run(argc, argv);
  } catch (const procnode::Error& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    const auto code = e.code();
    return code == procnode::ErrorCode::kInvalidInput || code == procnode::ErrorCode::kNotFound ||
                   code == procnode::ErrorCode::kUnsupported
               ? 2
               : 1;
  } catch (const std::exception& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    return 1;
  }
}
