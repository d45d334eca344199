// The procnode commands other than conversion, in a module that the lean `procnode` program
// loads only when one of them is asked for (cli/main.cc): they need PostgreSQL, PDF, SR and SEG
// libraries whose loading alone costs more than converting a small series.
#include <dcmtk/dcmdata/dcdeftag.h>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
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
#include "cli/cli_args.h"
#include "cli/mask_regions.h"
#include "cli/radiomics_batch.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "core/parallel.h"
#include "core/version.h"
#include "dicom/folder_source.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "jobs/job_json.h"
#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "nifti/series_to_nifti.h"
#include "node/node.h"
#include "orthanc/http_orthanc_rest.h"
#include "pg/dsn.h"
#include "pg/migrations.h"
#include "pipeline/processing_pipeline.h"
#include "pipeline/routing_inputs.h"
#include "processors/builtin.h"
#include "processors/external/external_tool.h"
#include "processors/external/tool_manifest.h"
#include "processors/mr_normalize/bias_field.h"
#include "processors/mr_normalize/normalize.h"
#include "processors/processor.h"
#include "processors/volume_stats.h"
#include "results/key_images.h"
#include "routing/rule_set.h"
#include "routing/rules.h"

namespace procnode {
namespace {

using cli::Args;
using cli::Parse;
using cli::WriteFile;

class FolderResultSink : public ResultSink {
 public:
  explicit FolderResultSink(std::filesystem::path folder) : folder_(std::move(folder)) {}
  std::string Store(const std::string& bytes, const std::string& stem) override {
    const auto path = folder_ / (stem + ".dcm");
    std::filesystem::create_directories(path.parent_path());  // a series' instances: STEM/0001.dcm, ...
    WriteFile(path, bytes);
    return path.string();
  }

 private:
  std::filesystem::path folder_;
};

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

// The built-in processors and the external tools of --tools DIR (or $PROCNODE_TOOLS); a tool
// whose manifest is bad is left out, said on standard error.
const ProcessorRegistry& Processors(const Args& args) {
  static ProcessorRegistry registry;
  static bool made = false;
  if (made) return registry;
  made = true;
  RegisterBuiltinProcessors(registry);
  const char* env = std::getenv("PROCNODE_TOOLS");
  const std::string folder = args.Option("tools").value_or(env != nullptr ? env : "");
  if (!folder.empty()) {
    for (const auto& warning : RegisterTools(registry, folder, "")) std::cerr << "warning: " << warning << "\n";
  }
  return registry;
}

int Tools(const Args& args) {
  if (args.positional.size() != 3 || args.positional[1] != "validate") throw Error(ErrorCode::kInvalidInput, "tools needs: validate MANIFEST.json");
  const ToolManifest manifest = ReadToolManifest(args.positional[2]);
  std::cout << args.positional[2] << ": valid, tool " << manifest.name << " " << manifest.version << " ("
            << manifest.parameters.size() << " parameter(s))\n";
  return 0;
}

int Process(const Args& args) {
  if (args.positional.size() != 3) throw Error(ErrorCode::kInvalidInput, "process needs PROCESSOR DICOM_DIR");
  const Processor& processor = Processors(args).Get(args.positional[1]);
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
  ctx.keep_files_in = out.string();
  if (const auto mask_path = args.Option("mask")) {
    // Each label value of the mask is a region, on the grid of the series' NIfTI.
    ctx.extra_regions = [path = *mask_path](const Volume& volume) { return cli::MaskRegions(path, volume); };
  }
  if (const auto results = args.Option("results")) {
    for (std::size_t start = 0; start <= results->size();) {
      const std::size_t comma = std::min(results->find(',', start), results->size());
      const std::string name = results->substr(start, comma - start);
      if (!name.empty()) {
        ResultKindOfName(name);  // unknown names fail here, naming the known ones
        ctx.results.push_back(name);
      }
      start = comma + 1;
    }
  }
  // A progress bar where standard error is a terminal; elsewhere (logs, pipes) a line per stage.
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::string last_stage;
  ctx.progress = [terminal, &last_stage](double fraction, const std::string& message) {
    const int percent = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 100);
    if (terminal) {
      const int filled = percent / 5;
      std::cerr << "\r[" << std::string(filled, '#') << std::string(20 - filled, '.') << "] " << percent << "% " << message
                << "\033[K" << std::flush;
      return;
    }
    const std::string stage = message.substr(0, message.find(':'));
    if (stage == last_stage) return;
    last_stage = stage;
    std::cerr << "[" << percent << "%] " << message << "\n";
  };
  const auto inputs = InputInstances(source.ListSeries(""));
  const Rule rule{.id = "cli",
                  .spec = {.processor = processor.Info().name, .processor_version = processor.Info().version,
                           .parameters = parameters}};
  const Provenance provenance{.job = "cli", .rule = "command line", .node = "local",
                              .study_id = std::filesystem::path(args.positional[2]).filename().string(),
                              .idempotency_key = IdempotencyKey("cli", inputs, rule)};
  ctx.registry = &Processors(args);
  const auto result = RunPipeline(processor, parameters, source, sink, ctx, provenance);
  if (terminal) std::cerr << "\n";
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
  // Derived images as NIfTI on the input's grid (the same affine as the series' NIfTI).
  for (const auto& derived : result.output.derived) {
    WriteNiftiFile((out / ("derived-" + derived.name + ".nii.gz")).string(),
                   FloatNiftiImage(result.volume, derived.voxels, "procnode " + derived.name), true);
  }
  WriteFile(out / "measurements.json", result.summary.dump(2) + "\n");
  std::cout << result.summary["measurements"].dump(2) << "\n";
  return 0;
}

// Splits "1,10,50" into numbers; Error(kInvalidInput) naming the bad item.
std::vector<double> NumberList(const std::string& text, const std::string& option) {
  std::vector<double> numbers;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    std::size_t used = 0;
    try {
      numbers.push_back(std::stod(item, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) throw Error(ErrorCode::kInvalidInput, "--" + option + ": '" + item + "' is not a number");
    start = comma + 1;
  }
  return numbers;
}

// procnode nyul-train DICOM_DIR... --out MODEL.json: each folder's largest MR series, N4-corrected
// as mr-normalize corrects it, its foreground's landmarks; the averaged model written as JSON.
int NyulTrain(const Args& args) {
  const std::vector<std::string>& folders = args.params;
  if (folders.empty()) throw Error(ErrorCode::kInvalidInput, "nyul-train needs at least one DICOM_DIR");
  const std::string out = args.Required("out");
  const bool bias = args.Option("bias-correction").value_or("y") == "y";
#if !PROCNODE_HAVE_ITK
  if (bias) throw Error(ErrorCode::kUnsupported, "nyul-train: this procnode was built without ITK (no N4); use --bias-correction n");
#endif
  const std::vector<double> percentiles =
      args.Option("percentiles") ? NumberList(*args.Option("percentiles"), "percentiles") : mr::DefaultNyulPercentiles();
  std::vector<std::vector<float>> foregrounds;
  for (std::size_t i = 0; i < folders.size(); ++i) {
    const std::string& folder = folders[i];
    FolderStudySource source(folder);
    std::vector<SeriesRef> mr;
    for (const auto& s : source.ListSeries("")) {
      if (s.modality == "MR") mr.push_back(s);
    }
    if (mr.empty()) throw Error(ErrorCode::kInvalidInput, folder + ": no MR series");
    SeriesVolume loaded = NiftiSeriesVolume(source, LargestInputSeries(mr));
    const std::vector<uint8_t> mask = mr::ForegroundMask(loaded.volume);
    std::vector<float> values = std::move(loaded.volume.voxels);
#if PROCNODE_HAVE_ITK
    if (bias) {
      loaded.volume.voxels = values;
      values = mr::CorrectBias(values, mr::EstimateBiasField(loaded.volume, mask, {}).field);
    }
#endif
    // At most about a million foreground values per series: the percentiles do not move, the memory stays small.
    std::vector<float> inside = mr::ValuesInside(values, mask);
    const std::size_t stride = std::max<std::size_t>(1, inside.size() / 1000000);
    std::vector<float> kept;
    for (std::size_t k = 0; k < inside.size(); k += stride) kept.push_back(inside[k]);
    foregrounds.push_back(std::move(kept));
    std::cerr << "[" << i + 1 << "/" << folders.size() << "] " << folder << ": " << inside.size() << " foreground voxels\n";
  }
  const mr::NyulModel model = mr::TrainNyulModel(foregrounds, percentiles);
  nlohmann::json json = mr::NyulModelJson(model);
  json["bias_correction"] = bias;
  WriteFileBytes(out, json.dump(2) + "\n");
  std::cout << "Nyul model of " << model.trained_on << " series written to " << out << "\n";
  return 0;
}

// One input file of `procnode anonymize`, de-identified and checked, not yet written.
struct AnonymizedFile {
  enum { kWritten, kNotDicom, kRefused, kLeak } state = kNotDicom;
  std::string reason, bytes;
  std::filesystem::path target;
  DeidentifyOutcome outcome;
};

// Reads, de-identifies and leak-checks one file; its bytes are kept only when nothing of the
// input's PHI is in the object or in its name under `out`. Errors other than a refusal propagate.
AnonymizedFile AnonymizeFile(const std::filesystem::path& path, const DeidentifyOptions& options,
                             const std::filesystem::path& out) {
  AnonymizedFile item;
  std::unique_ptr<DcmFileFormat> file;
  try {
    file = ReadDicomFile(path.string(), path.string());
  } catch (const Error& e) {
    item.reason = e.what();
    return item;
  }
  try {
    item.outcome = Deidentify(*file, options, path.string());
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidInput) throw;
    item.state = AnonymizedFile::kRefused;
    item.reason = e.what();
    return item;
  }
  DcmDataset& ds = *file->getDataset();
  item.target = out / item.outcome.pseudonym / DicomString(ds, DCM_StudyInstanceUID) / DicomString(ds, DCM_SeriesInstanceUID) /
                (DicomString(ds, DCM_SOPInstanceUID) + ".dcm");
  // The gate: nothing of the input's PHI in the object that will be written, or in its name.
  const auto terms = PhiTerms(item.outcome.identity, item.outcome.phi_terms);
  auto hits = ScanDataset(ds, terms, item.target.filename().string());
  const auto name_hits = ScanFileName(item.target.string().substr(out.string().size()), terms);
  hits.insert(hits.end(), name_hits.begin(), name_hits.end());
  if (!hits.empty()) {
    item.state = AnonymizedFile::kLeak;
    for (const auto& hit : hits) {
      item.reason += (hit.term < 0 ? std::string("unreadable document") : "PHI term #" + std::to_string(hit.term)) + " at " +
                     hit.where + "\n";
    }
    return item;
  }
  item.bytes = WriteDeidentified(*file, path.string());
  item.state = AnonymizedFile::kWritten;
  return item;
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
    options.pixel_rules = ParsePixelRules(ReadFileBytes(*rules));
  }
  // With a vault: each patient's identity and UID map, sealed, for re-identification later.
  std::unique_ptr<PhiVault> vault;
  if (const auto dsn = args.Option("vault")) {
    const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
    if (keys == nullptr) throw Error(ErrorCode::kInvalidInput, "--vault needs the sealing keys in $PROCNODE_VAULT_KEYS");
    vault = std::make_unique<PhiVault>(WithSessionDefaults(*dsn, 5, 60), ParseVaultKeys(keys));
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
  // Batches: de-identified and leak-checked in parallel, identities sealed in the vault, then written.
  constexpr std::size_t kBatch = 256;
  for (std::size_t first = 0; first < files.size(); first += kBatch) {
    const std::size_t count = std::min(kBatch, files.size() - first);
    std::vector<AnonymizedFile> items(count);
    ParallelFor(count, [&](std::size_t i) {
      try {
        items[i] = AnonymizeFile(files[first + i], options, out);
      } catch (const Error& e) {
        // One object that cannot be de-identified or written (e.g. a transfer syntax DCMTK cannot
        // write) is reported by name; the others go on.
        items[i].state = AnonymizedFile::kRefused;
        items[i].reason = e.what();
      }
    });
    if (vault) {
      std::map<std::string, std::pair<PatientIdentity, std::map<std::string, std::string>>> patients;
      for (const auto& item : items) {
        if (item.state != AnonymizedFile::kWritten) continue;
        auto& patient = patients[item.outcome.pseudonym];
        patient.first = item.outcome.identity;
        patient.second.insert(item.outcome.uid_map.begin(), item.outcome.uid_map.end());
      }
      for (const auto& [pseudonym, patient] : patients) vault->Store(options.project, pseudonym, patient.first, patient.second, "cli");
    }
    std::set<std::filesystem::path> folders;
    for (const auto& item : items) {
      if (item.state == AnonymizedFile::kWritten) folders.insert(item.target.parent_path());
    }
    for (const auto& folder : folders) std::filesystem::create_directories(folder);
    ParallelFor(count, [&](std::size_t i) {
      if (items[i].state == AnonymizedFile::kWritten) WriteFile(items[i].target, items[i].bytes);
    });
    for (std::size_t i = 0; i < count; ++i) {
      const AnonymizedFile& item = items[i];
      const std::string path = files[first + i].string();
      switch (item.state) {
        case AnonymizedFile::kWritten:
          ++written;
          pseudonyms.insert(item.outcome.pseudonym);
          break;
        case AnonymizedFile::kNotDicom:
          skipped.push_back({{"file", path}, {"reason", item.reason}});
          break;
        case AnonymizedFile::kRefused:
          refused.push_back({{"file", path}, {"reason", item.reason}});
          break;
        case AnonymizedFile::kLeak:
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
                   .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
  if (leaks > 0) return 1;
  return refused.empty() ? 0 : 2;
}

// Re-identification for the vault role (whoever holds the vault's credentials and keys), audited.
int Reidentify(const Args& args) {
  const char* keys = std::getenv("PROCNODE_VAULT_KEYS");
  if (keys == nullptr) throw Error(ErrorCode::kInvalidInput, "the vault's keys are read from $PROCNODE_VAULT_KEYS, which is not set");
  PhiVault vault(WithSessionDefaults(args.Required("vault"), 5, 60), ParseVaultKeys(keys));
  const auto found = vault.Reidentify(args.Required("project"), args.Required("pseudonym"), args.Required("who"), args.Required("why"));
  std::cout << ReidentifiedJson(found).dump(2) << "\n";
  return 0;
}

int Rules(const Args& args) {
  if (args.positional.size() < 3 || (args.positional[1] != "validate" && args.positional[1] != "test")) {
    throw Error(ErrorCode::kInvalidInput, "rules needs: validate FILE, or test FILE DICOM_DIR");
  }
  const std::string& path = args.positional[2];
  const auto parsed = ParseRuleSet(ReadFileBytes(path), DefaultVocabulary(Processors(args)));
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

// procnode worker: the node's worker pool outside Orthanc, on the same job database, reaching the
// Orthanc that holds the studies over HTTP. Signals are taken by sigwait in one thread, so that a
// SIGTERM stops the pool cleanly (running jobs released, not lost) instead of killing it mid-write.
int Worker(const Args& args) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: they inherit it

  nlohmann::json file = nlohmann::json::object();
  if (const auto path = args.Option("config")) {
    file = nlohmann::json::parse(ReadFileBytes(*path), nullptr, false);
    if (!file.is_object()) throw Error(ErrorCode::kInvalidInput, *path + ": not a JSON object");
  }
  nlohmann::json section = file.value("ProcNode", nlohmann::json::object());
  const nlohmann::json orthanc = file.value("Orthanc", nlohmann::json::object());
  auto set = [&](const char* option, const char* key, bool number) {
    if (const auto value = args.Option(option)) section[key] = number ? nlohmann::json(std::stoi(*value)) : nlohmann::json(*value);
  };
  set("db", "Database", false);
  set("workers", "Workers", true);
  set("gpu", "Gpu", false);
  set("lease-seconds", "LeaseSeconds", true);
  set("vault", "PhiVault", false);
  NodeConfig config = ParseNodeConfig(nlohmann::json{{"ProcNode", section}}.dump(), ProcessEnv);
  for (const auto& warning : config.warnings) Log(LogLevel::kWarning, warning);
  config.standalone_worker = true;

  const std::string url = args.Option("orthanc").value_or(
      ProcessEnv("PROCNODE_ORTHANC_URL").value_or(orthanc.value("Url", "")));
  if (url.empty()) {
    throw Error(ErrorCode::kInvalidInput, "worker: no Orthanc: give --orthanc URL, $PROCNODE_ORTHANC_URL or \"Orthanc\": {\"Url\"}");
  }
  const std::string user = args.Option("orthanc-user").value_or(
      ProcessEnv("PROCNODE_ORTHANC_USER").value_or(orthanc.value("Username", "")));
  HttpOrthancRest rest(url, user, ProcessEnv("PROCNODE_ORTHANC_PASSWORD").value_or(""));
  const auto system = nlohmann::json::parse(rest.Get("/system"), nullptr, false);
  // The Orthanc's procnode plugin says which Orthanc it is: this worker claims only its jobs.
  const auto status = nlohmann::json::parse(rest.Get("/procnode/status"), nullptr, false);
  if (!status.is_object() || !status.contains("orthanc_id") || !status["orthanc_id"].is_string()) {
    throw Error(ErrorCode::kInvalidInput, "worker: the Orthanc at " + rest.base_url() + " does not run procnode's plugin "
                                          "(no orthanc_id in /procnode/status)");
  }
  config.orthanc_id = status["orthanc_id"].get<std::string>();
  Log(LogLevel::kInfo, "worker: Orthanc " + (system.is_object() ? system.value("Version", "?") : std::string("?")) + " at " +
                           rest.base_url() + (user.empty() ? "" : " as " + user) + ", its jobs only (\"" +
                           config.orthanc_id + "\")");
  Node node(config, rest);

  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (finished) return;
    Log(LogLevel::kInfo, std::string("worker: ") + strsignal(signal) + ": releasing running jobs");
    node.RequestStop();
  });
  if (const auto once = args.Option("once")) {
    // The signal thread is woken and joined however RunOneJob ends.
    struct StopWaiter {
      std::atomic<bool>& finished;
      std::thread& waiter;
      ~StopWaiter() {
        finished = true;
        pthread_kill(waiter.native_handle(), SIGTERM);
        waiter.join();
      }
    } stop_waiter{finished, waiter};
    const int64_t id = std::stoll(*once);
    const std::string state = node.RunOneJob(id);
    std::cout << nlohmann::json{{"job", id}, {"state", state}}.dump() << "\n";
    return state == "done" ? 0 : state == "not claimable" ? 2 : 1;
  }
  node.StartWorkersOnly();
  waiter.join();  // until SIGTERM or SIGINT
  node.StopWork();
  Log(LogLevel::kInfo, "worker: stopped");
  return 0;
}

int Run(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  if (args.positional.empty()) {
    std::cerr << cli::Usage();
    return 2;
  }
  const std::string& command = args.positional[0];
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
  if (command == "nyul-train") return NyulTrain(args);
  if (command == "radiomics") return cli::RadiomicsBatch(args, Processors(args), ParseParams(args.params));
  if (command == "processors") {
    nlohmann::json list = nlohmann::json::array();
    for (const Processor* p : Processors(args).All()) list.push_back(ProcessorJson(p->Info()));
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  if (command == "anonymize") return Anonymize(args);
  if (command == "worker") return Worker(args);
  if (command == "reidentify") return Reidentify(args);
  if (command == "rules") return Rules(args);
  if (command == "tools") return Tools(args);
  std::cerr << "unknown command '" << command << "'\n" << cli::Usage();
  return 2;
}

}  // namespace
}  // namespace procnode

// The module's one entry point (exports.map), called by the procnode program with its own
// arguments after it has set up DCMTK's dictionary and logging.
extern "C" __attribute__((visibility("default"))) int ProcnodeRunCommand(int argc, char** argv) {
  return procnode::cli::Guarded([&] { return procnode::Run(argc, argv); });
}
