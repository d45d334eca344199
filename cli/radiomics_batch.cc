#include "cli/radiomics_batch.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cli/mask_regions.h"
#include "core/error.h"
#include "core/files.h"
#include "core/format.h"
#include "core/parallel.h"
#include "dicom/folder_source.h"
#include "dicom/image.h"
#include "nifti/series_to_nifti.h"
#include "pipeline/processing_pipeline.h"

namespace procnode::cli {
namespace {

namespace fs = std::filesystem;

// The cases of the inputs: an input holding files is one; otherwise each sub-folder is one.
std::vector<std::string> Cases(const std::vector<std::string>& inputs) {
  std::vector<std::string> cases;
  for (const auto& input : inputs) {
    if (!fs::is_directory(input)) throw Error(ErrorCode::kInvalidInput, input + ": not a folder");
    bool files = false;
    std::vector<std::string> folders;
    for (const auto& entry : fs::directory_iterator(input)) {
      if (entry.is_regular_file()) files = true;
      if (entry.is_directory()) folders.push_back(entry.path().string());
    }
    if (files) {
      cases.push_back(fs::path(input).lexically_normal().string());
      continue;
    }
    std::sort(folders.begin(), folders.end());
    for (auto& f : folders) cases.push_back(fs::path(f).lexically_normal().string());
  }
  std::sort(cases.begin(), cases.end());
  cases.erase(std::unique(cases.begin(), cases.end()), cases.end());
  if (cases.empty()) throw Error(ErrorCode::kInvalidInput, "radiomics: no case folders in the inputs");
  return cases;
}

std::string Duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  }
  return text;
}

// One case through the radiomics processor: the journal entry (done with its rows, or failed with
// the reason).
nlohmann::json RunCase(const std::string& folder, const Processor& radiomics, const nlohmann::json& parameters,
                       const ProcessorRegistry& registry, const std::optional<std::string>& masks) {
  nlohmann::json entry{{"case", folder}};
  thread_local ReuseSampleBuffers reuse;  // this thread's next case reuses the pages of its last
  try {
    FolderStudySource source(folder);
    const auto series_list = source.ListSeries("");
    const SeriesRef series = PickSeries(radiomics.Info(), series_list, "");
    entry["series"] = series.id;
    const SeriesVolume loaded = NiftiSeriesVolume(source, series);
    const Volume& v = loaded.volume;
    if (const std::string reason = RejectionReason(radiomics.Info(), v); !reason.empty()) throw Error(ErrorCode::kInvalidInput, reason);
    ProcessorContext context;
    context.device = DevicePreference::kCpu;
    context.measurements_only = true;
    context.regions = [&] {
      std::vector<RegionMask> regions =
          StudyRegions(source, series_list, v, loaded.sources.empty() ? "" : loaded.sources.front().frame_of_reference_uid);
      if (masks) {
        const std::string name = fs::path(folder).filename().string();
        fs::path mask = fs::path(*masks) / (name + ".nii.gz");
        if (!fs::exists(mask)) mask = fs::path(*masks) / (name + ".nii");
        if (fs::exists(mask)) {
          for (auto& r : MaskRegions(mask.string(), v)) regions.push_back(std::move(r));
        } else if (regions.empty()) {
          throw Error(ErrorCode::kInvalidInput, "no region of interest: no RTSTRUCT or SEG in the case, and no mask " + name + ".nii.gz in " + *masks);
        }
      }
      return regions;
    };
    context.run_processor = [&](const std::string& name, const nlohmann::json& given) {
      return RunChained(registry, radiomics.Info().name, v, context, name, given);
    };
    const ProcessorOutput out = radiomics.Run(v, parameters, context);
    entry["status"] = "done";
    entry["rows"] = out.measurements.at("regions");
    for (auto& row : entry["rows"]) row.erase("undefined");  // the reasons stay in `procnode process`; the CSV cell is empty
  } catch (const std::exception& e) {
    entry["status"] = "failed";
    entry["error"] = e.what();
  }
  return entry;
}

}  // namespace

int RadiomicsBatch(const Args& args, const ProcessorRegistry& registry, const nlohmann::json& given) {
  // Case after case allocates alike: freed buffers stay on the heap for the next case instead of
  // mapping and faulting in fresh pages each time (half of a small case's time otherwise).
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
  const Processor& radiomics = registry.Get("radiomics");
  const nlohmann::json parameters = ResolveParameters(radiomics.Info(), given);  // bad settings fail before any case
  const std::vector<std::string> inputs(args.positional.begin() + 1, args.positional.end());
  const fs::path csv_path = args.Required("out");
  const std::optional<std::string> masks = args.Option("masks");
  if (masks && !fs::is_directory(*masks)) throw Error(ErrorCode::kInvalidInput, *masks + ": not a folder (--masks)");
  const unsigned jobs = args.Option("jobs") ? static_cast<unsigned>(std::stoul(*args.Option("jobs"))) : DefaultParallelism();
  const std::vector<std::string> cases = Cases(inputs);
  if (csv_path.has_parent_path()) fs::create_directories(csv_path.parent_path());

  // The journal: what earlier runs finished (the last entry of a case wins; a torn last line, from
  // a run that died while writing it, is ignored).
  const fs::path journal_path = csv_path.string() + ".journal";
  std::map<std::string, nlohmann::json> journal;
  std::string settings_seen;
  if (std::ifstream in(journal_path); in) {
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
      if (entry.is_discarded() || !entry.is_object()) continue;
      if (entry.contains("parameters")) {
        if (entry["parameters"] != parameters) {
          throw Error(ErrorCode::kInvalidInput, journal_path.string() + " was made with other settings (" + entry["parameters"].dump() +
                                                    "): give another --out, or remove the journal to start again");
        }
        continue;
      }
      if (!entry.contains("case") || !entry["case"].is_string()) continue;
      const std::string key = entry["case"];  // before the move: an assignment's right side goes first
      journal[key] = std::move(entry);
    }
  }
  std::vector<std::string> todo;
  std::size_t skipped = 0;
  for (const auto& c : cases) {
    const auto it = journal.find(c);
    if (it != journal.end() && it->second.value("status", "") == "done") {
      ++skipped;
    } else {
      todo.push_back(c);
    }
  }
  std::ofstream append(journal_path, std::ios::app);
  if (!append) throw Error(ErrorCode::kUnavailable, journal_path.string() + ": cannot be written");
  append << nlohmann::json{{"parameters", parameters}}.dump() << "\n" << std::flush;

  std::cerr << "radiomics: " << cases.size() << " case(s), " << skipped << " already done (" << journal_path.filename().string() << "), "
            << todo.size() << " to run on " << std::min<std::size_t>(jobs, std::max<std::size_t>(todo.size(), 1)) << " thread(s)\n";
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::mutex mutex;
  std::size_t done = 0, failed = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_line = start;
  auto report = [&](bool final) {  // under `mutex`
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = elapsed > 0 ? done / elapsed : 0;
    const std::size_t left = todo.size() - done;
    std::string line = std::to_string(done) + "/" + std::to_string(todo.size()) + " cases, " + FormatNumber("%.1f/s", rate) +
                       (rate > 0 && left > 0 ? ", " + Duration(left / rate) + " left" : "") +
                       (failed > 0 ? ", " + std::to_string(failed) + " failed" : "");
    if (terminal) {
      const int filled = todo.empty() ? 20 : static_cast<int>(20 * done / todo.size());
      std::cerr << "\r[" << std::string(filled, '#') << std::string(20 - filled, '.') << "] " << line << "\033[K" << (final ? "\n" : "")
                << std::flush;
    } else if (final || std::chrono::steady_clock::now() - last_line > std::chrono::seconds(30) ||
               (todo.size() >= 10 && done % (todo.size() / 10) == 0)) {
      std::cerr << "radiomics: " << line << "\n";
      last_line = std::chrono::steady_clock::now();
    }
  };
  ParallelFor(
      todo.size(),
      [&](std::size_t i) {
        nlohmann::json entry = RunCase(todo[i], radiomics, parameters, registry, masks);
        std::lock_guard lock(mutex);
        append << entry.dump() << "\n" << std::flush;
        ++done;
        if (entry["status"] == "failed") ++failed;
        journal[todo[i]] = std::move(entry);
        report(false);
      },
      jobs);
  {
    std::lock_guard lock(mutex);
    report(true);
  }

  // The CSV from every case's last entry, columns the union of the features.
  std::set<std::string> columns;
  std::vector<std::pair<std::string, std::string>> failures;
  std::size_t rows = 0;
  for (const auto& c : cases) {
    const auto it = journal.find(c);
    if (it == journal.end()) continue;
    if (it->second.value("status", "") != "done") {
      failures.push_back({c, it->second.value("error", "unknown")});
      continue;
    }
    for (const auto& row : it->second["rows"]) {
      for (const auto& [tag, value] : row["features"].items()) columns.insert(tag);
      ++rows;
    }
  }
  std::string csv = "case,series,region,source,voxels";
  for (const auto& c : columns) csv += "," + c;
  csv += "\n";
  for (const auto& c : cases) {
    const auto it = journal.find(c);
    if (it == journal.end() || it->second.value("status", "") != "done") continue;
    for (const auto& row : it->second["rows"]) {
      csv += CsvField(c) + "," + CsvField(it->second.value("series", "")) + "," + CsvField(row.value("name", "")) + "," +
             CsvField(row.value("source", "")) + "," + std::to_string(row.value("voxels", 0));
      for (const auto& tag : columns) {
        csv += ",";
        if (row["features"].contains(tag)) csv += FormatNumber("%.10g", row["features"][tag].get<double>());
      }
      csv += "\n";
    }
  }
  const fs::path temporary = csv_path.string() + ".partial";
  WriteFileBytes(temporary.string(), csv);
  fs::rename(temporary, csv_path);
  std::cout << csv_path.string() << ": " << rows << " row(s) of " << columns.size() << " feature(s) from " << cases.size() - failures.size()
            << " case(s)\n";
  if (failures.empty()) return 0;
  std::cerr << failures.size() << " case(s) failed (run again to retry them):\n";
  for (std::size_t i = 0; i < failures.size() && i < 50; ++i) std::cerr << "  " << failures[i].first << ": " << failures[i].second << "\n";
  if (failures.size() > 50) std::cerr << "  ... and " << failures.size() - 50 << " more (in " << journal_path.string() << ")\n";
  return 2;
}

}  // namespace procnode::cli
