#include "cli/cli_args.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <exception>
#include <set>
#include <fstream>
#include <iostream>
#include <memory>

#include "core/files.h"

namespace procnode::cli {
namespace {

constexpr const char* kFooter =
    "Exit codes: 0 success, 2 bad input (the message names the file and the reason), 1 other failure.\n"
    "procnode COMMAND --help describes one command.";

// Where a parsed command line lands before it becomes Args: every value by its name.
struct Parsed {
  std::vector<std::string> path;                                   // command, subcommand
  std::vector<std::pair<std::string, std::string*>> positionals;   // in order
  std::map<std::string, std::unique_ptr<std::string>> values;      // option name -> value
  std::vector<std::string> params;
  std::vector<std::string> inputs;                                 // a command's list of positionals (radiomics)
  std::vector<std::unique_ptr<std::string>> storage;
};

// The grammar. Each command: its positional arguments (name, help, required) and options.
class Grammar {
 public:
  Grammar() : app_("procnode: DICOM-native processing node (conversion, anonymization, processors, rules)", "procnode") {
    app_.footer(kFooter);
    app_.require_subcommand(1);
    app_.fallthrough(false);

    auto* convert = Command("convert", "DICOM series to NIfTI-1 with dcm2niix's conventions: one series to OUT, "
                                       "or every series found to --outdir");
    Positional(convert, "DICOM_DIR", "folder of DICOM files (searched recursively)", true);
    Positional(convert, "OUT", "OUT.nii or OUT.nii.gz (when the folder holds one series)", false);
    Value(convert, "sidecar", "OUT.json", "write the BIDS JSON sidecar there");
    Value(convert, "outdir", "DIR", "convert every series into DIR (NAME.nii.gz + NAME.json; diffusion series also "
                                    "NAME.bval + NAME.bvec)");
    Value(convert, "compress", "y|n", "with --outdir: gzip the images (y, the default: NAME.nii.gz) or not (n: NAME.nii), "
                                      "as dcm2niix -z", false, "z")
        ->check(CLI::IsMember({"y", "n"}));

    auto* rules = Command("rules", "check a routing rule set, or try it on a study");
    rules->require_subcommand(1);
    auto* validate = Sub(rules, "validate", "check FILE.json against the rule language; errors name their JSON pointer");
    Positional(validate, "FILE", "the rule set (JSON)", true);
    auto* test = Sub(rules, "test", "which rules fire on the study in DICOM_DIR, and why the others do not");
    Positional(test, "FILE", "the rule set (JSON)", true);
    Positional(test, "DICOM_DIR", "folder holding the study", true);
    Value(test, "calling-aet", "AET", "the sender's AE title, for rules that test CallingAET");
    Value(test, "called-aet", "AET", "the receiver's AE title, for rules that test CalledAET");
    for (auto* command : {validate, test}) {
      Value(command, "tools", "DIR", "external tools' folder, so rules may name them (default $PROCNODE_TOOLS)");
    }

    auto* process = Command("process", "run a processor on the folder's largest series it accepts: measurements.json, "
                                       "labels.nii.gz, seg.dcm, sr.dcm, report.pdf, report-pdf.dcm in --out; a derived "
                                       "image as derived-NAME.nii.gz and its DICOM series in derived-NAME/");
    Positional(process, "PROCESSOR", "a processor name (procnode processors lists them)", true);
    Positional(process, "DICOM_DIR", "folder holding the series", true);
    Value(process, "out", "DIR", "where the results go", true);
    process->add_option("--param", parsed_.params, "a processor parameter (repeatable)")->type_name("KEY=VALUE");
    Value(process, "device", "DEVICE", "auto (GPU where present), cpu or gpu")
        ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
    Value(process, "tools", "DIR", "external tools' folder (each NAME/tool.json; default $PROCNODE_TOOLS): PROCESSOR "
                                   "may name one; its derived images and logs are kept in --out");
    Value(process, "mask", "MASK.nii[.gz]", "regions of interest for processors that take them (radiomics): a label image on "
                                            "the series' grid (as `procnode convert` writes it), one region per label value");
    Value(process, "results", "A,B", "result kinds to write, as a rule's \"results\": pdf, seg, sr, derived "
                                     "(default: the processor's own choice)");

    auto* nyul = Command("nyul-train", "train a Nyul histogram-standardisation model for mr-normalize (method nyul) from "
                                       "the largest MR series of each DICOM_DIR: N4-corrected, foreground landmarks");
    nyul->add_option("DICOM_DIR", parsed_.params, "folders, one series each (at least one)")->required();
    Value(nyul, "out", "MODEL.json", "where the model goes (give it to mr-normalize as nyul_model)", true);
    Value(nyul, "percentiles", "P1,P2,...", "landmark percentiles, ascending (default 1,10,20,...,90,99)");
    Value(nyul, "bias-correction", "y|n", "N4 before taking landmarks, as mr-normalize does (default y)")
        ->check(CLI::IsMember({"y", "n"}));

    auto* batch = Command("radiomics", "IBSI radiomics over many cases into one CSV: all cores, progress, resumable (a journal "
                                       "beside the CSV: run again to finish or retry), failures listed; exit 2 when a case failed");
    batch->add_option("INPUT", parsed_.inputs, "a case folder (a series with its RTSTRUCT or SEG), or a folder of case folders")
        ->required();
    Value(batch, "out", "FEATURES.csv", "the CSV (case, series, region, source, voxels, then one column per feature)", true);
    batch->add_option("--param", parsed_.params, "a radiomics parameter, as procnode process radiomics takes them (repeatable)")
        ->type_name("KEY=VALUE");
    Value(batch, "masks", "DIR", "each case's regions from DIR/CASE.nii.gz (a label image on the series' grid; CASE the folder name)");
    Value(batch, "jobs", "N", "cases at a time (default: the cores, at most 8; PROCNODE_THREADS)")->check(CLI::Range(1, 256));

    auto* processors = Command("processors", "the processors, their inputs and parameters (JSON Schema)");
    Value(processors, "tools", "DIR", "also the external tools of DIR (default $PROCNODE_TOOLS)");

    auto* tools = Command("tools", "external tools: check a manifest");
    tools->require_subcommand(1);
    auto* tool_validate = Sub(tools, "validate", "check MANIFEST.json against the tool contract; errors name their JSON pointer");
    Positional(tool_validate, "MANIFEST", "the tool's manifest (tool.json)", true);

    auto* anonymize = Command("anonymize", "PS3.15 Annex E de-identification of every DICOM file under IN_DIR into "
                                           "OUT_DIR/<pseudonym>/<study>/<series>/<sop>.dcm, each output leak-checked");
    Positional(anonymize, "IN_DIR", "folder of DICOM files", true);
    Positional(anonymize, "OUT_DIR", "where de-identified files go", true);
    Value(anonymize, "project", "NAME", "pseudonyms, UIDs and date shifts are per project", true);
    Value(anonymize, "options", "A,B",
          "profile options: retain-safe-private, retain-uids, retain-device-identity, retain-institution-identity, "
          "retain-patient-characteristics, full-dates | modified-dates, clean-descriptors, clean-structured-content, "
          "clean-graphics, allow-recognizable-features");
    Value(anonymize, "pixel-rules", "RULES.json", "Clean Pixel Data regions by manufacturer, model and size");
    Value(anonymize, "secret-env", "VAR", "environment variable holding the project secret "
                                          "(default PROCNODE_ANONYMIZATION_SECRET)");
    Value(anonymize, "vault", "DSN", "keep each identity sealed in this PHI vault (keys: $PROCNODE_VAULT_KEYS)");

    auto* reidentify = Command("reidentify", "the original identity and UIDs behind a pseudonym, for the vault role; "
                                             "every access is audited");
    Value(reidentify, "vault", "DSN", "the PHI vault (keys: $PROCNODE_VAULT_KEYS)", true);
    Value(reidentify, "project", "NAME", "the project of the pseudonym", true);
    Value(reidentify, "pseudonym", "PN", "the pseudonym", true);
    Value(reidentify, "who", "NAME", "who asks (audited)", true);
    Value(reidentify, "why", "REASON", "why (audited)", true);

    auto* migrate = Command("migrate", "apply the job database migrations");
    Value(migrate, "db", "DSN", "the job database", true);
    auto* jobs = Command("jobs", "list jobs of the job database");
    Value(jobs, "db", "DSN", "the job database", true);
    Value(jobs, "state", "STATE", "queued, running, done, failed or cancelled")
        ->check(CLI::IsMember({"queued", "running", "done", "failed", "cancelled"}));
    Value(jobs, "limit", "N", "at most N jobs (default 100)")->check(CLI::Range(1, 10000));
    auto* worker = Command("worker", "run queued jobs outside Orthanc: claims jobs from the job database, fetches each "
                                     "study from its Orthanc over REST, runs the pipeline, stores the results back; "
                                     "SIGTERM or Ctrl-C releases the running jobs to the queue");
    Value(worker, "db", "DSN", "the job database (default $PROCNODE_DATABASE)");
    Value(worker, "orthanc", "URL", "the Orthanc holding the studies, e.g. http://pacs-node:8042 (default "
                                    "$PROCNODE_ORTHANC_URL); its password only from $PROCNODE_ORTHANC_PASSWORD");
    Value(worker, "orthanc-user", "USER", "Orthanc user (default $PROCNODE_ORTHANC_USER)");
    Value(worker, "workers", "N", "worker threads (default 2)")->check(CLI::Range(1, 64));
    Value(worker, "gpu", "MODE", "auto, cpu or gpu (default auto)")->check(CLI::IsMember({"auto", "cpu", "gpu"}));
    Value(worker, "lease-seconds", "S", "lease of a claimed job, renewed while it runs (default 60)")
        ->check(CLI::Range(2, 86400));
    Value(worker, "vault", "DSN", "the PHI vault, for anonymized routes (keys: $PROCNODE_VAULT_KEYS)");
    Value(worker, "config", "FILE", "JSON with a \"ProcNode\" section (as in Orthanc's configuration) and "
                                    "\"Orthanc\": {\"Url\", \"Username\"}; options given here win");
    Value(worker, "once", "JOB_ID", "run this one job and exit: 0 done, 1 failed (or queued for a retry), "
                                    "2 not claimable")->check(CLI::PositiveNumber);

    Command("status", "build, CUDA and GPU");
    Command("version", "the version");
  }

  Args Parse(int argc, char** argv) {
    if (argc <= 1) {
      std::cerr << app_.help();
      throw Exit{2};
    }
    const std::string first = argv[1];
    const auto commands = SubcommandNames(&app_);
    if (first[0] != '-' && std::find(commands.begin(), commands.end(), first) == commands.end()) {
      std::cerr << "procnode: unknown command '" << first << "'" << Suggestion(first, commands, "")
                << "\nRun procnode --help for the commands.\n";
      throw Exit{2};
    }
    try {
      app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << Help();
      throw Exit{0};
    } catch (const CLI::ParseError& e) {
      std::cerr << "procnode: " << e.what() << MisspeltOptions(argc, argv) << "\n"
                << "Run procnode " << (app_.get_subcommands().empty() ? "" : PathOf(Deepest()) + " ") << "--help for more information.\n";
      throw Exit{2};
    }
    Args args;
    for (const CLI::App* sub = app_.get_subcommands().front(); sub != nullptr;) {
      args.positional.push_back(sub->get_name());
      const auto below = sub->get_subcommands();
      sub = below.empty() ? nullptr : below.front();
    }
    const std::string command = Join(args.positional);
    for (const auto& [owner, value] : parsed_.positionals) {
      if (owner == command && !value->empty()) args.positional.push_back(*value);
    }
    args.positional.insert(args.positional.end(), parsed_.inputs.begin(), parsed_.inputs.end());
    for (const auto& [key, value] : parsed_.values) {
      const auto slash = key.find('|');
      if (key.substr(0, slash) == command && options_given_.contains(key)) args.options[key.substr(slash + 1)] = *value;
    }
    args.params = parsed_.params;
    return args;
  }

  std::string Help() { return Deepest()->help(); }

  std::string ProgramHelp() { return app_.help(); }

 private:
  CLI::App* Command(const char* name, const char* description) { return Sub(&app_, name, description); }

  CLI::App* Sub(CLI::App* parent, const char* name, const char* description) {
    CLI::App* sub = parent->add_subcommand(name, description);
    sub->footer(kFooter);
    return sub;
  }

  // The deepest command given, else the program.
  CLI::App* Deepest() {
    CLI::App* deepest = &app_;
    while (!deepest->get_subcommands().empty()) deepest = deepest->get_subcommands().front();
    return deepest;
  }

  static std::vector<std::string> SubcommandNames(CLI::App* app) {
    std::vector<std::string> names;
    for (const CLI::App* sub : app->get_subcommands({})) names.push_back(sub->get_name());
    return names;
  }

  static std::size_t Distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        const std::size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[b.size()];
  }

  // ": did you mean X?" for the closest of `known` within two edits of `word`, else "".
  static std::string Suggestion(const std::string& word, const std::vector<std::string>& known, const std::string& prefix) {
    std::string best;
    std::size_t best_distance = 3;
    for (const auto& k : known) {
      const std::size_t d = Distance(word, k);
      if (d < best_distance) best = k, best_distance = d;
    }
    return best.empty() ? "" : " (did you mean " + prefix + best + "?)";
  }

  // For every --word of the command line that the command does not know, the closest it does.
  std::string MisspeltOptions(int argc, char** argv) {
    CLI::App* command = Deepest();
    std::vector<std::string> known;
    for (const CLI::Option* option : command->get_options()) {
      for (const auto& name : option->get_lnames()) known.push_back(name);
    }
    std::string out;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg.rfind("--", 0) != 0 || arg.size() <= 2) continue;
      const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      out += "\nprocnode: unknown option --" + name + Suggestion(name, known, "--");
    }
    return out;
  }

  static std::string Join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
  }

  static std::string PathOf(const CLI::App* app) {
    std::vector<std::string> names;
    for (const CLI::App* a = app; a != nullptr && a->get_parent() != nullptr; a = a->get_parent()) names.insert(names.begin(), a->get_name());
    return Join(names);
  }

  void Positional(CLI::App* sub, const char* name, const char* help, bool required) {
    parsed_.storage.push_back(std::make_unique<std::string>());
    std::string* value = parsed_.storage.back().get();
    CLI::Option* option = sub->add_option(name, *value, help);
    if (required) option->required();
    parsed_.positionals.emplace_back(PathOf(sub), value);
  }

  CLI::Option* Value(CLI::App* sub, const char* name, const char* type, const char* help, bool required = false,
                     const char* short_name = nullptr) {
    const std::string key = PathOf(sub) + "|" + name;
    auto& value = parsed_.values[key];
    value = std::make_unique<std::string>();
    const std::string names = (short_name ? std::string("-") + short_name + "," : std::string()) + "--" + name;
    CLI::Option* option = sub->add_option(names, *value, help)->type_name(type);
    option->each([this, key](const std::string&) { options_given_.insert(key); });
    if (required) option->required();
    return option;
  }

  CLI::App app_;
  Parsed parsed_;
  std::set<std::string> options_given_;
};

}  // namespace

Args Parse(int argc, char** argv) { return Grammar().Parse(argc, argv); }

std::string Usage() { return Grammar().ProgramHelp(); }

void WriteFile(const std::filesystem::path& path, const std::string& bytes) { WriteFileBytes(path.string(), bytes); }

int Guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const Exit& exit) {
    return exit.code;
  } catch (const Error& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    const auto code = e.code();
    return code == ErrorCode::kInvalidInput || code == ErrorCode::kNotFound || code == ErrorCode::kUnsupported ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace procnode::cli
