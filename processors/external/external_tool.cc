#include "processors/external/external_tool.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include "core/digest.h"
#include "core/error.h"
#include "core/files.h"
#include "core/format.h"
#include "nifti/nifti1.h"
#include "processors/external/sandbox.h"
#include "processors/external/tool_outputs.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A run's private folder, removed when the run ends whatever happened.
class RunFolder {
 public:
  RunFolder(const std::string& root, const std::string& tool) {
    const fs::path base = root.empty() ? fs::temp_directory_path() : fs::path(root);
    std::error_code ec;
    fs::create_directories(base, ec);
    std::string pattern = (base / ("procnode-tool-" + tool + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(ErrorCode::kUnavailable, "tool " + tool + ": cannot make a run folder under " + base.string());
    }
    path_ = pattern;
    for (const char* sub : {"input", "output", "tmp"}) fs::create_directory(path_ / sub);
  }
  ~RunFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;
  fs::path operator/(const char* sub) const { return path_ / sub; }

 private:
  fs::path path_;
};

// The input volume as NIfTI (.nii), streamed: int16 when every value is an integer that fits (CT,
// most MR), else float32; the converter's geometry (the volume's affine). Converted through a small
// buffer, so no second copy of the volume is made.
void WriteInputImage(const std::string& path, const Volume& v) {
  NiftiImage image;
  image.dims = {static_cast<int64_t>(v.dims[0]), static_cast<int64_t>(v.dims[1]), static_cast<int64_t>(v.dims[2]), 1, 1};
  image.pixdim = {v.spacing[0], v.spacing[1], v.spacing[2], 0};
  image.srow = VolumeAffine(v);
  image.descrip = "procnode tool input";
  image.datatype = kDtInt16;
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), std::fclose);
  if (!file) throw Error(ErrorCode::kUnavailable, path + ": cannot be created (" + ErrnoReason(errno) + ")");
  bool ok = true;
  auto put = [&](const void* data, std::size_t size) { ok = ok && std::fwrite(data, 1, size, file.get()) == size; };
  std::string header = NiftiHeaderBytes(image);
  put(header.data(), header.size());
  std::vector<int16_t> chunk(1 << 18);
  bool integral = true;
  for (std::size_t start = 0; integral && start < v.voxels.size(); start += chunk.size()) {
    const std::size_t n = std::min(chunk.size(), v.voxels.size() - start);
    for (std::size_t i = 0; i < n; ++i) {
      const float x = v.voxels[start + i];
      if (!(x >= -32768.0f && x <= 32767.0f) || static_cast<float>(static_cast<int16_t>(x)) != x) {
        integral = false;
        break;
      }
      chunk[i] = static_cast<int16_t>(x);
    }
    if (integral) put(chunk.data(), n * sizeof(int16_t));
  }
  if (!integral) {  // start again as float32
    image.datatype = kDtFloat32;
    header = NiftiHeaderBytes(image);
    ok = ok && std::fseek(file.get(), 0, SEEK_SET) == 0;
    put(header.data(), header.size());
    put(v.voxels.data(), v.voxels.size() * sizeof(float));
  }
  if (std::fclose(file.release()) != 0 || !ok) {
    throw Error(ErrorCode::kUnavailable, path + ": cannot be written (" + ErrnoReason(errno) + ")");
  }
}

// The last `n` lines of a text, for error messages.
std::string LastLines(const std::string& text, int n) {
  std::size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "";
  std::size_t start = end + 1;
  for (int i = 0; i < n && start > 0; ++i) {
    const std::size_t newline = text.rfind('\n', start - 1);
    start = newline == std::string::npos ? 0 : newline;
    if (newline == std::string::npos) break;
  }
  std::string lines = text.substr(start, end + 1 - start);
  if (!lines.empty() && lines[0] == '\n') lines.erase(0, 1);
  for (char& c : lines) {
    if (c == '\n') c = '|';
  }
  return lines.size() > 600 ? lines.substr(lines.size() - 600) : lines;
}

// The last `n` bytes of a text.
std::string Tail(const std::string& text, std::size_t n) { return text.substr(text.size() > n ? text.size() - n : 0); }

std::string CommandDigest(const std::vector<std::string>& command) {
  std::string joined;
  for (const auto& part : command) joined += part + '\0';
  return Sha256Hex(joined);
}

}  // namespace

ExternalToolProcessor::ExternalToolProcessor(ToolManifest manifest, std::string work_root)
    : manifest_(std::move(manifest)), info_(ToolProcessorInfo(manifest_)), work_root_(std::move(work_root)) {
  info_.details = ToolManifestJson(manifest_);
}

ProcessorOutput ExternalToolProcessor::Run(const Volume& volume, const json& parameters, const ProcessorContext& context) const {
  const ToolManifest& m = manifest_;
  const RunFolder folder(work_root_, m.name);
  if (context.progress) context.progress(0.0, "writing the input");
  WriteInputImage((folder / "input" / "image.nii").string(), volume);
  json sidecar = context.sidecar != nullptr ? *context.sidecar : json::object();
  WriteFileBytes((folder / "input" / "image.json").string(), sidecar.dump(2) + "\n");
  if (m.input_dicom) {
    if (!context.write_source_dicom) {
      throw Error(ErrorCode::kInvalidInput, "tool " + m.name + ": needs the series' DICOM files, which this run cannot give");
    }
    fs::create_directory(folder / "input" / "dicom");
    context.write_source_dicom((folder / "input" / "dicom").string());
  }
  const json settings{
      {"tool", m.name},
      {"version", m.version},
      {"parameters", parameters},
      {"input", {{"image", "/input/image.nii"}, {"sidecar", "/input/image.json"},
                 {"dicom", m.input_dicom ? json("/input/dicom") : json()}, {"modality", volume.modality},
                 {"units", volume.units}, {"dims", volume.dims}, {"spacing_mm", volume.spacing}}},
      {"output", "/output"},
      {"limits", {{"cpus", m.cpus}, {"memory_mb", m.memory_bytes >> 20}, {"time_limit_seconds", m.time_limit_seconds},
                  {"max_output_mb", m.max_output_bytes >> 20}}}};
  WriteFileBytes((folder / "input" / "settings.json").string(), settings.dump(2) + "\n");

  SandboxSpec spec;
  for (const auto& part : m.command) {
    std::string arg = part;
    for (std::size_t at = arg.find("{tool}"); at != std::string::npos; at = arg.find("{tool}", at)) arg.replace(at, 6, "/tool");
    spec.argv.push_back(arg);
  }
  const std::string threads = std::to_string(m.cpus);
  spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", "/tmp"}, {"TMPDIR", "/tmp"}, {"LANG", "C.UTF-8"},
              {"PROCNODE_INPUT", "/input"}, {"PROCNODE_OUTPUT", "/output"}, {"PROCNODE_SETTINGS", "/input/settings.json"},
              {"PROCNODE_IMAGE", "/input/image.nii"}, {"PROCNODE_SIDECAR", "/input/image.json"}, {"PROCNODE_TOOL", "/tool"},
              {"OMP_NUM_THREADS", threads}, {"OPENBLAS_NUM_THREADS", threads}, {"MKL_NUM_THREADS", threads},
              {"PYTHONDONTWRITEBYTECODE", "1"}, {"MPLCONFIGDIR", "/tmp"}};
  if (m.input_dicom) spec.env.push_back({"PROCNODE_DICOM", "/input/dicom"});
  if (m.gpu) spec.env.push_back({"CUDA_VISIBLE_DEVICES", "0"});
  spec.mounts = {{m.folder, "/tool", false},
                 {(folder / "input").string(), "/input", false},
                 {(folder / "output").string(), "/output", true},
                 {(folder / "tmp").string(), "/tmp", true}};
  for (const auto& path : m.read_only_paths) spec.mounts.push_back({path, path, false});
  spec.working_directory = "/output";
  spec.gpu = m.gpu;
  spec.memory_bytes = m.memory_bytes;
  spec.file_size_bytes = m.max_output_bytes;
  spec.cpu_seconds = m.time_limit_seconds * m.cpus + 5;
  spec.wall_seconds = m.time_limit_seconds;
  spec.watched_folders = {(folder / "output").string(), (folder / "tmp").string()};
  spec.watched_bytes = m.max_output_bytes;
  spec.stop_requested = context.stop_requested;
  if (context.progress) {
    spec.on_stdout_line = [&](const std::string& line) {
      if (line.rfind("progress:", 0) != 0) return;
      char* end = nullptr;
      const double fraction = std::strtod(line.c_str() + 9, &end);
      if (end == line.c_str() + 9 || !std::isfinite(fraction)) return;
      std::string step(end);
      step.erase(0, step.find_first_not_of(' '));
      context.progress(0.05 + 0.85 * std::clamp(fraction, 0.0, 1.0), (m.name + ": " + step).substr(0, 200));
    };
  }
  if (context.progress) context.progress(0.05, "running " + m.name + " " + m.version);
  const SandboxRun run = RunSandboxed(spec);
  if (run.limit == "cancelled") throw Error(ErrorCode::kCancelled, "tool " + m.name + ": cancelled");
  if (const std::string failure = SandboxFailure(run, spec); !failure.empty()) {
    const std::string last = LastLines(run.stderr_tail, 3);
    throw Error(ErrorCode::kProcessorFailed, "tool " + m.name + " " + m.version + ": " + failure +
                                                 (last.empty() ? "" : "; last lines of its stderr: " + last));
  }
  if (context.progress) context.progress(0.92, "reading the outputs of " + m.name);
  ProcessorOutput out = ReadToolOutputs((folder / "output").string(), m, volume);
  out.device = m.gpu ? "gpu (sandboxed tool)" : "cpu (sandboxed tool)";
  const std::string command_sha256 = CommandDigest(m.command);
  out.run = {{"tool", m.name},
             {"version", m.version},
             {"manifest_sha256", m.manifest_sha256},
             {"command_sha256", command_sha256},
             {"exit_code", run.exit_code},
             {"runtime_seconds", std::round(run.wall_seconds * 1000) / 1000},
             {"cpu_seconds", std::round(run.cpu_seconds * 1000) / 1000},
             {"peak_memory_mb", std::round(run.peak_rss_bytes / 1048576.0 * 10) / 10},
             {"stdout_tail", Tail(run.stdout_tail, 4096)},
             {"stderr_tail", Tail(run.stderr_tail, 4096)}};
  if (!run.stdout_tail.empty()) out.files.push_back({"tool-stdout.log", run.stdout_tail, "the tool's standard output (last 64 KiB)"});
  if (!run.stderr_tail.empty()) out.files.push_back({"tool-stderr.log", run.stderr_tail, "the tool's standard error (last 64 KiB)"});
  ReportSection provenance;
  provenance.heading = "External tool";
  provenance.rows = {{"Tool", m.name + " " + m.version},
                     {"Manifest SHA-256", m.manifest_sha256.substr(0, 16)},
                     {"Command SHA-256", command_sha256.substr(0, 16)},
                     {"Exit code", std::to_string(run.exit_code)},
                     {"Runtime", FormatNumber("%.2f", run.wall_seconds) + " s"},
                     {"Peak memory", FormatNumber("%.1f", run.peak_rss_bytes / 1048576.0) + " MiB"},
                     {"Sandbox", "bubblewrap: no network, read-only input, " + std::to_string(m.memory_bytes >> 20) +
                                     " MiB, " + std::to_string(m.time_limit_seconds) + " s"}};
  out.report.push_back(std::move(provenance));
  return out;
}

std::vector<std::string> RegisterTools(ProcessorRegistry& registry, const std::string& folder, const std::string& work_root) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error(ErrorCode::kInvalidInput, "tools folder " + folder + ": not a readable folder");
  std::vector<fs::path> manifests;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory() && fs::exists(it->path() / "tool.json")) manifests.push_back(it->path() / "tool.json");
  }
  std::sort(manifests.begin(), manifests.end());
  std::vector<std::string> warnings;
  for (const auto& path : manifests) {
    try {
      ToolManifest manifest = ReadToolManifest(path.string());
      if (registry.Find(manifest.name) != nullptr) {
        warnings.push_back(path.string() + ": /name: \"" + manifest.name + "\" is already a processor; tool left out");
        continue;
      }
      registry.Add(std::make_unique<ExternalToolProcessor>(std::move(manifest), work_root));
    } catch (const Error& e) {
      warnings.push_back(std::string(e.what()) + "; tool left out");
    }
  }
  return warnings;
}

}  // namespace procnode
