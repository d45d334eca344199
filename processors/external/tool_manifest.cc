#include "processors/external/tool_manifest.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/digest.h"
#include "core/error.h"

namespace procnode {
namespace {

using nlohmann::json;

constexpr int kManifestVersion = 1;

class Checker {
 public:
  explicit Checker(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void Fail(const std::string& pointer, const std::string& reason) const {
    throw Error(ErrorCode::kInvalidInput, name_ + ": " + (pointer.empty() ? "/" : pointer) + ": " + reason);
  }

  void Keys(const json& object, const std::string& pointer, const std::set<std::string>& allowed) const {
    if (!object.is_object()) Fail(pointer, "must be an object");
    for (const auto& [key, value] : object.items()) {
      if (!allowed.contains(key)) {
        std::string known;
        for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
        Fail(pointer + "/" + key, "unknown key (known: " + known + ")");
      }
    }
  }

  std::string Text(const json& object, const std::string& key, const std::string& pointer, bool required,
                   std::size_t max_length = 1000) const {
    if (!object.contains(key)) {
      if (required) Fail(pointer + "/" + key, "missing");
      return "";
    }
    const json& value = object[key];
    if (!value.is_string()) Fail(pointer + "/" + key, "must be a string");
    const std::string text = value.get<std::string>();
    if (required && text.empty()) Fail(pointer + "/" + key, "must not be empty");
    if (text.size() > max_length) Fail(pointer + "/" + key, "longer than " + std::to_string(max_length) + " characters");
    return text;
  }

  long long Integer(const json& object, const std::string& key, const std::string& pointer, long long fallback,
                    long long minimum, long long maximum) const {
    if (!object.contains(key)) return fallback;
    const json& value = object[key];
    if (!value.is_number_integer() || value.get<long long>() < minimum || value.get<long long>() > maximum) {
      Fail(pointer + "/" + key, "must be an integer from " + std::to_string(minimum) + " to " + std::to_string(maximum));
    }
    return value.get<long long>();
  }

  bool Boolean(const json& object, const std::string& key, const std::string& pointer) const {
    if (!object.contains(key)) return false;
    if (!object[key].is_boolean()) Fail(pointer + "/" + key, "must be true or false");
    return object[key].get<bool>();
  }

  std::vector<std::string> Strings(const json& object, const std::string& key, const std::string& pointer,
                                   std::size_t max_items) const {
    std::vector<std::string> out;
    if (!object.contains(key)) return out;
    const json& list = object[key];
    if (!list.is_array()) Fail(pointer + "/" + key, "must be a list of strings");
    if (list.size() > max_items) Fail(pointer + "/" + key, "more than " + std::to_string(max_items) + " items");
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string() || list[i].get<std::string>().empty()) {
        Fail(pointer + "/" + key + "/" + std::to_string(i), "must be a non-empty string");
      }
      out.push_back(list[i].get<std::string>());
    }
    return out;
  }

 private:
  std::string name_;
};

// The parameters' JSON Schema: an object schema whose properties are scalars with defaults, the
// subset native processors declare (ParameterSpec).
std::vector<ParameterSpec> ParseParameters(const Checker& check, const json& schema) {
  const std::string at = "/parameters";
  check.Keys(schema, at, {"$schema", "title", "description", "type", "properties", "additionalProperties"});
  if (schema.contains("type") && schema["type"] != "object") check.Fail(at + "/type", "must be \"object\"");
  if (schema.contains("additionalProperties") && schema["additionalProperties"] != false) {
    check.Fail(at + "/additionalProperties", "must be false (unknown parameters are refused)");
  }
  std::vector<ParameterSpec> specs;
  if (!schema.contains("properties")) return specs;
  if (!schema["properties"].is_object()) check.Fail(at + "/properties", "must be an object");
  static const std::regex kName("^[A-Za-z][A-Za-z0-9_-]{0,63}$");
  for (const auto& [name, property] : schema["properties"].items()) {
    const std::string p = at + "/properties/" + name;
    if (!std::regex_match(name, kName)) check.Fail(p, "parameter names are letters, digits, '_' and '-' (at most 64)");
    check.Keys(property, p, {"type", "default", "minimum", "maximum", "enum", "description", "title"});
    ParameterSpec spec;
    spec.name = name;
    spec.type = property.contains("type") && property["type"].is_string() ? property["type"].get<std::string>() : "";
    if (spec.type != "number" && spec.type != "integer" && spec.type != "boolean" && spec.type != "string") {
      check.Fail(p + "/type", "must be \"number\", \"integer\", \"boolean\" or \"string\"");
    }
    spec.description = check.Text(property, "description", p, false);
    for (const char* bound : {"minimum", "maximum"}) {
      if (!property.contains(bound)) continue;
      if (spec.type != "number" && spec.type != "integer") check.Fail(p + "/" + bound, "only numbers have bounds");
      if (!property[bound].is_number()) check.Fail(p + "/" + bound, "must be a number");
      (std::string(bound) == "minimum" ? spec.minimum : spec.maximum) = property[bound].get<double>();
    }
    if (spec.minimum && spec.maximum && *spec.minimum > *spec.maximum) check.Fail(p + "/minimum", "is above the maximum");
    if (property.contains("enum")) {
      if (spec.type != "string") check.Fail(p + "/enum", "only strings have choices");
      spec.choices = check.Strings(property, "enum", p, 64);
      if (spec.choices.empty()) check.Fail(p + "/enum", "must not be empty");
    }
    if (!property.contains("default")) check.Fail(p + "/default", "missing: every parameter has a default");
    spec.default_value = property["default"];
    // The default must pass the checks a given value passes.
    ProcessorInfo probe{.name = "default"};
    probe.parameters.push_back(spec);
    try {
      ResolveParameters(probe, json{{name, spec.default_value}});
    } catch (const Error& e) {
      const std::string message = e.what();
      check.Fail(p + "/default", message.substr(message.find(':') + 2));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

bool SafeFileName(const std::string& name) {
  static const std::regex kFile("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
  return std::regex_match(name, kFile) && name.find("..") == std::string::npos;
}

}  // namespace

ToolManifest ParseToolManifest(const std::string& text, const std::string& name) {
  const Checker check(name);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
    throw Error(ErrorCode::kInvalidInput, name + ": not JSON: " + e.what());
  }
  check.Keys(root, "", {"$schema", "manifest_version", "name", "version", "description", "report_title", "command",
                        "modalities", "min_slices", "inputs", "parameters", "outputs", "requirements",
                        "read_only_paths"});
  if (!root.contains("manifest_version")) check.Fail("/manifest_version", "missing (this procnode reads version 1)");
  check.Integer(root, "manifest_version", "", kManifestVersion, kManifestVersion, kManifestVersion);
  ToolManifest m;
  m.manifest_sha256 = Sha256Hex(text);
  m.name = check.Text(root, "name", "", true, 64);
  static const std::regex kToolName("^[a-z][a-z0-9-]{1,63}$");
  if (!std::regex_match(m.name, kToolName)) check.Fail("/name", "must be lower-case letters, digits and '-' (2-64)");
  m.version = check.Text(root, "version", "", true, 64);
  m.description = check.Text(root, "description", "", true);
  m.report_title = check.Text(root, "report_title", "", false, 120);
  if (m.report_title.empty()) m.report_title = m.name + " report";

  if (!root.contains("command")) check.Fail("/command", "missing: the program and its arguments (argv, no shell)");
  m.command = check.Strings(root, "command", "", 256);
  if (m.command.empty()) check.Fail("/command", "must name a program");
  const std::string& program = m.command.front();
  if (program.find('/') != std::string::npos && program[0] != '/' && program.rfind("{tool}/", 0) != 0) {
    check.Fail("/command/0", "a path must be absolute or start with {tool}/");
  }

  m.modalities = check.Strings(root, "modalities", "", 32);
  for (std::size_t i = 0; i < m.modalities.size(); ++i) {
    static const std::regex kModality("^[A-Z]{2,16}$");
    if (!std::regex_match(m.modalities[i], kModality)) check.Fail("/modalities/" + std::to_string(i), "a DICOM modality such as CT or MR");
  }
  m.min_slices = static_cast<std::size_t>(check.Integer(root, "min_slices", "", 1, 1, 100000));

  if (root.contains("inputs")) {
    check.Keys(root["inputs"], "/inputs", {"nifti", "dicom"});
    if (root["inputs"].contains("nifti") && root["inputs"]["nifti"] != true) {
      check.Fail("/inputs/nifti", "must be true: every tool gets the series as NIfTI");
    }
    m.input_dicom = check.Boolean(root["inputs"], "dicom", "/inputs");
  }
  if (root.contains("parameters")) m.parameters = ParseParameters(check, root["parameters"]);

  if (root.contains("outputs")) {
    const json& outputs = root["outputs"];
    check.Keys(outputs, "/outputs", {"labels", "measurements", "report", "derived", "max_output_mb"});
    m.labels = check.Boolean(outputs, "labels", "/outputs");
    m.measurements = check.Boolean(outputs, "measurements", "/outputs");
    m.report = check.Boolean(outputs, "report", "/outputs");
    m.derived = check.Strings(outputs, "derived", "/outputs", 16);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < m.derived.size(); ++i) {
      const std::string& file = m.derived[i];
      const std::string p = "/outputs/derived/" + std::to_string(i);
      if (!SafeFileName(file) || !(file.ends_with(".nii") || file.ends_with(".nii.gz"))) {
        check.Fail(p, "must be a plain file name ending in .nii or .nii.gz");
      }
      if (file == "labels.nii.gz" || file == "labels.nii" || !seen.insert(file).second) check.Fail(p, "is named twice");
    }
    m.max_output_bytes = static_cast<uint64_t>(check.Integer(outputs, "max_output_mb", "/outputs", 1024, 1, 1 << 20)) << 20;
  }
  if (!m.labels && !m.measurements && !m.report && m.derived.empty()) {
    check.Fail("/outputs", "declares nothing: a tool writes labels, measurements, a report or derived images");
  }

  if (root.contains("requirements")) {
    const json& r = root["requirements"];
    check.Keys(r, "/requirements", {"cpus", "memory_mb", "gpu", "gpu_memory_mb", "time_limit_seconds"});
    m.cpus = static_cast<int>(check.Integer(r, "cpus", "/requirements", 1, 1, 256));
    m.memory_bytes = static_cast<uint64_t>(check.Integer(r, "memory_mb", "/requirements", 2048, 16, 1 << 20)) << 20;
    m.gpu = check.Boolean(r, "gpu", "/requirements");
    m.gpu_memory_bytes = static_cast<uint64_t>(check.Integer(r, "gpu_memory_mb", "/requirements", 0, 0, 1 << 20)) << 20;
    if (m.gpu_memory_bytes > 0 && !m.gpu) check.Fail("/requirements/gpu_memory_mb", "needs \"gpu\": true");
    m.time_limit_seconds = static_cast<int>(check.Integer(r, "time_limit_seconds", "/requirements", 600, 1, 7 * 86400));
  }

  m.read_only_paths = check.Strings(root, "read_only_paths", "", 16);
  for (std::size_t i = 0; i < m.read_only_paths.size(); ++i) {
    const std::filesystem::path path(m.read_only_paths[i]);
    const std::string p = "/read_only_paths/" + std::to_string(i);
    if (!path.is_absolute() || path.lexically_normal() != path || m.read_only_paths[i].find("..") != std::string::npos) {
      check.Fail(p, "must be an absolute, normal path");
    }
    static const std::set<std::string> kRefused{"/", "/etc", "/root", "/home", "/proc", "/sys", "/dev", "/run", "/var",
                                                "/tmp", "/var/lib", "/var/lib/orthanc", "/var/lib/postgresql"};
    const std::string normal = path.string().ends_with('/') && path.string() != "/" ? path.string().substr(0, path.string().size() - 1)
                                                                                     : path.string();
    if (kRefused.contains(normal) || normal.rfind("/var/lib/orthanc", 0) == 0 || normal.rfind("/var/lib/postgresql", 0) == 0 ||
        normal.rfind("/etc/orthanc", 0) == 0 || normal.rfind("/proc", 0) == 0 || normal.rfind("/sys", 0) == 0) {
      check.Fail(p, "would show the tool the node's own files or secrets");
    }
  }
  return m;
}

ToolManifest ReadToolManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kUnavailable, path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (1u << 20)) throw Error(ErrorCode::kInvalidInput, path + ": larger than 1 MiB");
  ToolManifest m = ParseToolManifest(text.str(), path);
  m.folder = std::filesystem::absolute(path).parent_path().lexically_normal().string();
  return m;
}

ProcessorInfo ToolProcessorInfo(const ToolManifest& m) {
  ProcessorInfo info;
  info.name = m.name;
  info.version = m.version;
  info.description = m.description;
  info.report_title = m.report_title;
  info.modalities = m.modalities;
  info.min_slices = m.min_slices;
  info.kind = "external";
  // A tool's derived images are kept with the job; written as DICOM series where a rule asks ("derived").
  info.default_results = {"pdf", "seg", "sr"};
  info.requires_gpu = m.gpu;
  info.has_gpu_implementation = m.gpu;
  info.gpu_bytes_fixed = m.gpu_memory_bytes;
  info.gpu_bytes_per_voxel = 0;
  info.host_bytes_per_voxel = 4;  // the input volume the node holds, besides the tool's own limit
  info.host_bytes_fixed = m.memory_bytes;
  info.parameters = m.parameters;
  return info;
}

json ToolManifestJson(const ToolManifest& m) {
  return {{"command", m.command},
          {"inputs", {{"nifti", true}, {"dicom", m.input_dicom}}},
          {"outputs", {{"labels", m.labels}, {"measurements", m.measurements}, {"report", m.report},
                       {"derived", m.derived}, {"max_output_mb", m.max_output_bytes >> 20}}},
          {"requirements", {{"cpus", m.cpus}, {"memory_mb", m.memory_bytes >> 20}, {"gpu", m.gpu},
                            {"gpu_memory_mb", m.gpu_memory_bytes >> 20}, {"time_limit_seconds", m.time_limit_seconds}}},
          {"read_only_paths", m.read_only_paths},
          {"manifest_sha256", m.manifest_sha256}};
}

}  // namespace procnode
