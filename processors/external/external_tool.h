// External tools as processors: a third-party program declared by a manifest (tool_manifest.h),
// run in the sandbox (sandbox.h) on the series as NIfTI, its outputs read back through the
// output contract (tool_outputs.h). To the registry, routing, the pipeline, REST and the command
// line a tool is a processor like the built-ins (ProcessorInfo.kind "external").
//
// One run: a private folder under the work root (mode 0700) with input/ (image.nii, image.json,
// settings.json, and dicom/ when the manifest asks), output/ and tmp/; the tool sees them as
// /input (read-only), /output and /tmp, its own folder as /tool (read-only), and these variables:
//   PROCNODE_INPUT=/input  PROCNODE_OUTPUT=/output  PROCNODE_SETTINGS=/input/settings.json
//   PROCNODE_IMAGE=/input/image.nii  PROCNODE_SIDECAR=/input/image.json  PROCNODE_TOOL=/tool
//   PROCNODE_DICOM=/input/dicom (when asked)  HOME=TMPDIR=/tmp  OMP/MKL/OPENBLAS threads = cpus
// A line "progress: FRACTION [STEP]" on its standard output is shown as the job's progress.
// The folder is removed when the run ends, whatever the outcome. Thread-safe (each run has its
// own folder).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "processors/external/tool_manifest.h"
#include "processors/processor.h"

namespace procnode {

class ExternalToolProcessor : public Processor {
 public:
  // `work_root`: where run folders are made; empty: the system's temporary folder.
  ExternalToolProcessor(ToolManifest manifest, std::string work_root);
  const ProcessorInfo& Info() const override { return info_; }
  const ToolManifest& Manifest() const { return manifest_; }
  // Error(kProcessorFailed) "tool NAME: reason" (exit code, limit, output fault, with the last
  // lines of its standard error); Error(kCancelled) when stopped; Error(kUnavailable) when the
  // sandbox cannot be made.
  ProcessorOutput Run(const Volume& volume, const nlohmann::json& parameters, const ProcessorContext& context) const override;

 private:
  ToolManifest manifest_;
  ProcessorInfo info_;
  std::string work_root_;
};

// Every tool of `folder`: each `NAME/tool.json` one level down. A manifest that does not parse,
// or names a processor already registered, is left out and said in the returned warnings
// ("PATH: /pointer: reason"); Error(kInvalidInput) when `folder` is not a readable folder.
std::vector<std::string> RegisterTools(ProcessorRegistry& registry, const std::string& folder, const std::string& work_root);

}  // namespace procnode
