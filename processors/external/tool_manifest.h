// External tool manifests: the JSON file that declares a third-party program as a processor
// (schemas/tools/tool-manifest.schema.json says the same in JSON Schema). ParseToolManifest checks
// every key and names the first fault by its JSON pointer ("/requirements/memory_mb: must be an
// integer from 16 to 1048576"), so `procnode tools validate`, the node's start and the tests give
// the same answer. ToolProcessorInfo is what the registry, routing and REST see of a tool: its
// parameters (a JSON Schema subset) become ParameterSpecs, checked like a native processor's.
// Pure; thread-safe.
//
// Example (tools/normalize-intensity/tool.json):
//   {"manifest_version": 1, "name": "normalize-intensity", "version": "1.0.0",
//    "description": "...", "command": ["python3", "{tool}/normalize.py"], "modalities": ["MR"],
//    "parameters": {"type": "object", "properties": {"method": {"type": "string",
//                   "enum": ["zscore", "percentile"], "default": "zscore"}}},
//    "outputs": {"labels": true, "derived": ["normalized.nii.gz"]},
//    "requirements": {"cpus": 1, "memory_mb": 1024, "time_limit_seconds": 300}}
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "processors/processor.h"

namespace procnode {

struct ToolManifest {
  std::string name, version, description, report_title;
  // argv, no shell. "{tool}" in an argument is the tool's folder inside the sandbox (/tool).
  std::vector<std::string> command;
  std::vector<std::string> modalities;  // empty: any
  std::size_t min_slices = 1;
  bool input_dicom = false;             // also the series' DICOM files, read-only, in /input/dicom
  std::vector<ParameterSpec> parameters;
  // What the tool may write into /output; a declared output that is missing fails the job.
  bool labels = false, measurements = false, report = false;
  std::vector<std::string> derived;     // derived images (NIfTI) by file name
  uint64_t max_output_bytes = 1ull << 30;
  int cpus = 1;
  uint64_t memory_bytes = 2ull << 30;   // address-space limit of every process of the tool
  bool gpu = false;
  uint64_t gpu_memory_bytes = 0;
  int time_limit_seconds = 600;
  std::vector<std::string> read_only_paths;  // host folders the tool needs besides /usr (e.g. /opt/fsl)
  std::string folder;                        // where the manifest lies (bound read-only at /tool)
  std::string manifest_sha256;               // of the manifest's bytes
};

// `text` is the manifest's JSON; `name` names it in errors (its path). Error(kInvalidInput)
// "NAME: /pointer: reason" at the first fault.
ToolManifest ParseToolManifest(const std::string& text, const std::string& name);
// Reads and parses the file; its folder is the tool's folder. Error(kUnavailable) when unreadable.
ToolManifest ReadToolManifest(const std::string& path);

// The registry's view of a tool (kind "external"; host memory is the tool's limit).
ProcessorInfo ToolProcessorInfo(const ToolManifest& manifest);
// What REST and `procnode processors` add for a tool: command, inputs, outputs, requirements.
nlohmann::json ToolManifestJson(const ToolManifest& manifest);

}  // namespace procnode
