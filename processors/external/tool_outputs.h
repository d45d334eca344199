// The output contract of external tools: what a tool leaves in its output folder, checked and
// turned into what a native processor returns (ProcessorOutput), so the same result writers make
// SEG, SR (TID 1500) and the PDF report from it.
//
//   labels.nii[.gz]     integer labels 0-255 on the input's grid (same dimensions and affine within
//                       0.01 mm); 0 is background; every other value declared in labels.json
//   labels.json         {"1": "Foreground"} or {"1": {"name": "...", "code": {"value", "scheme",
//                       "meaning"}, "category": {...}, "colour": [r, g, b]}}; codes SCT or DCM
//   measurements.json   {"measurements": [{"name": "Mean", "value": 1.5, "unit": "[hnsf'U]",
//                       "label": 1, "code": {...}}]}: UCUM units, per label (in the SR) or global
//   report.json         {"sections": [{"heading", "paragraph", "rows": [[label, value]],
//                       "table": {"header": [...], "rows": [[...]]}}]}
//   derived images      the NIfTI files the manifest names, on the input's grid, no NaN: kept with
//                       the job, and written as derived image series where a rule's "results"
//                       names "derived"
//
// Everything is bounded (sizes, counts, text lengths) and every fault is Error(kProcessorFailed)
// "tool NAME: FILE: reason". Pure except for reading the folder; thread-safe.
#pragma once

#include <string>

#include "core/volume.h"
#include "processors/external/tool_manifest.h"
#include "processors/processor.h"

namespace procnode {

// Reads `folder` (the tool's /output after it exited 0). Undeclared files are left out with a
// warning; a declared output that is missing fails.
ProcessorOutput ReadToolOutputs(const std::string& folder, const ToolManifest& manifest, const Volume& input);

}  // namespace procnode
