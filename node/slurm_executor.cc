#include "node/slurm_executor.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/subprocess.h"

namespace procnode {
namespace {

// A value from an external tool's manifest requirements ("cpus", "time_limit_seconds"); 0 if none.
int ManifestRequirement(const ProcessorInfo* processor, const char* key) {
  if (processor == nullptr || !processor->details.is_object() || !processor->details.contains("requirements")) return 0;
  const auto& r = processor->details["requirements"];
  return r.is_object() && r.contains(key) && r[key].is_number_integer() ? r[key].get<int>() : 0;
}

// Single-quoted for sh (configuration paths are checked to hold no quote; this is belt and braces).
std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

SlurmResources SlurmResourcesFor(const Job& job, const ProcessorInfo* processor, const NodeConfig::Executor& executor) {
  SlurmResources r;
  r.cpus = std::max(1, ManifestRequirement(processor, "cpus") > 0 ? ManifestRequirement(processor, "cpus") : executor.cpus_per_job);
  const int seconds = ManifestRequirement(processor, "time_limit_seconds") > 0 ? ManifestRequirement(processor, "time_limit_seconds")
                                                                                : executor.time_limit_seconds;
  r.time_minutes = std::max(1, static_cast<int>(std::ceil(seconds / 60.0)));
  // The estimate is of the volume and the processor's work; the worker itself, its libraries and
  // the study's DICOM files come on top: half again plus 512 MiB, at least 1 GiB.
  const double estimate_mb = static_cast<double>(job.spec.requirements.host_memory_bytes) / (1 << 20);
  r.memory_mb = std::max<uint64_t>(1024, static_cast<uint64_t>(std::ceil(estimate_mb * 1.5 + 512)));
  r.gpus = job.spec.requirements.needs_gpu ? 1 : 0;
  r.partition = r.gpus > 0 && !executor.gpu_partition.empty() ? executor.gpu_partition : executor.partition;
  return r;
}

std::string SlurmBatchScript(const Job& job, const SlurmResources& r, const NodeConfig::Executor& executor,
                             const std::string& job_log_folder) {
  std::ostringstream s;
  s << "#!/bin/sh\n"
    << "#SBATCH --job-name=procnode-" << job.id << "\n"
    << "#SBATCH --no-requeue\n"
    << "#SBATCH --chdir=" << job_log_folder << "\n"
    << "#SBATCH --output=" << job_log_folder << "/slurm-%j.out\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=" << r.cpus << "\n"
    << "#SBATCH --mem=" << r.memory_mb << "M\n"
    << "#SBATCH --time=" << r.time_minutes << "\n";
  if (!r.partition.empty()) s << "#SBATCH --partition=" << r.partition << "\n";
  if (r.gpus > 0) s << "#SBATCH --gres=gpu:" << r.gpus << "\n";
  if (!executor.account.empty()) s << "#SBATCH --account=" << executor.account << "\n";
  if (!executor.qos.empty()) s << "#SBATCH --qos=" << executor.qos << "\n";
  for (const auto& option : executor.extra_options) s << "#SBATCH " << option << "\n";
  s << "# procnode job " << job.id << ": " << job.spec.processor << " (rule " << job.rule_id << "@" << job.rule_version
    << "), attempt " << job.attempts + 1 << " of " << job.max_attempts << "\n"
    << "exec " << Quoted(executor.procnode) << " worker --once " << job.id << " --workers 1 --config "
    << Quoted(executor.worker_config) << "\n";
  return s.str();
}

std::map<std::string, SlurmJobState> ParseSqueue(const std::string& out) {
  std::map<std::string, SlurmJobState> states;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto first = line.find('|');
    const auto second = first == std::string::npos ? std::string::npos : line.find('|', first + 1);
    if (second == std::string::npos) continue;
    const std::string id = line.substr(0, first);
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); })) continue;
    std::string reason = line.substr(second + 1);
    while (!reason.empty() && (reason.back() == '\r' || reason.back() == ' ')) reason.pop_back();
    states[id] = {line.substr(first + 1, second - first - 1), reason};
  }
  return states;
}

bool SlurmStateEnded(const std::string& state) {
  static const std::set<std::string> kEnded{"COMPLETED", "CANCELLED", "FAILED",  "TIMEOUT", "NODE_FAIL",   "PREEMPTED",
                                            "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"};
  return kEnded.contains(state);
}

SlurmEnd DescribeSlurmEnd(const std::string& id, const std::string& state, const std::string& reason) {
  const std::string why = reason.empty() || reason == "None" ? "" : ", reason " + reason;
  const std::string job = "Slurm job " + id;
  if (state.empty()) return {job + " left Slurm without finishing the job (its final state is no longer known)", true};
  if (state == "TIMEOUT") return {job + " reached its time limit (TIMEOUT" + why + "): raise the processor's time limit or Executor.TimeLimitSeconds", false};
  if (state == "OUT_OF_MEMORY") return {job + " ran out of memory (OUT_OF_MEMORY" + why + ")", false};
  if (state == "CANCELLED") return {job + " was cancelled outside procnode (CANCELLED" + why + ")", true};
  if (state == "NODE_FAIL") return {job + ": its compute node failed (NODE_FAIL" + why + ")", true};
  if (state == "PREEMPTED") return {job + " was preempted (PREEMPTED" + why + ")", true};
  if (state == "COMPLETED") return {job + " ended without finishing the job (COMPLETED" + why + "; see its log)", true};
  if (state == "FAILED") return {job + " failed before the job was finished (FAILED" + why + "; see its log)", true};
  return {job + " ended (" + state + why + ") without finishing the job", true};
}

std::vector<std::pair<std::string, std::string>> SlurmCommands::Env() const {
  if (executor_.slurm_conf.empty()) return {};
  return {{"SLURM_CONF", executor_.slurm_conf}};
}

std::string SlurmCommands::Submit(const std::string& script_path) {
  const auto r = RunCommand({"sbatch", "--parsable", script_path}, Env(), 60);
  std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
  if (r.exit_code != 0 || id.empty() || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); })) {
    std::string said = r.err.empty() ? r.out : r.err;
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    throw Error(ErrorCode::kUnavailable, "sbatch " + std::string(r.timed_out ? "did not answer in 60 s" : "refused the job") +
                                             (said.empty() ? "" : ": " + said.substr(0, 500)));
  }
  return id;
}

std::map<std::string, SlurmJobState> SlurmCommands::Query(const std::vector<std::string>& ids) {
  std::map<std::string, SlurmJobState> states;
  // One call per few hundred jobs: a thousand submitted jobs cost a handful of squeue calls.
  for (std::size_t first = 0; first < ids.size(); first += 500) {
    std::string list;
    for (std::size_t i = first; i < std::min(ids.size(), first + 500); ++i) list += (list.empty() ? "" : ",") + ids[i];
    const auto r = RunCommand({"squeue", "-h", "--states=all", "-o", "%i|%T|%r", "-j", list}, Env(), 60);
    if (r.exit_code != 0) {
      throw Error(ErrorCode::kUnavailable, "squeue " + std::string(r.timed_out ? "did not answer in 60 s" : "failed: " + r.err.substr(0, 500)));
    }
    states.merge(ParseSqueue(r.out));
  }
  return states;
}

void SlurmCommands::Cancel(const std::string& id) {
  const auto r = RunCommand({"scancel", id}, Env(), 60);
  if (r.exit_code != 0) throw Error(ErrorCode::kUnavailable, "scancel " + id + " failed: " + r.err.substr(0, 500));
}

}  // namespace procnode
