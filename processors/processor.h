// The processor framework: what a processor declares (ProcessorInfo: name, version, accepted
// inputs, parameters with types, ranges and defaults, device needs), how it runs
// (Processor::Run on a Volume, with progress, cancellation and a device preference), what it
// returns (measurements, an optional label volume aligned with the input, report sections), and
// the registry processors are registered into (ProcessorRegistry; the built-ins in builtin.h).
//
// Parameters are checked before a job is created (routing validates rule parameters against
// ProcessorInfo) and again when it runs (ResolveParameters: unknown names, wrong types and values
// out of range are Error(kInvalidInput) naming the parameter; defaults fill the rest).
// Processors are stateless and thread-safe; a registry is filled once, then only read.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/coded.h"
#include "core/report_section.h"
#include "core/volume.h"
#include "processors/volume_stats.h"

namespace procnode {

struct ParameterSpec {
  std::string name;
  std::string type;                  // "number", "integer", "boolean" or "string"
  nlohmann::json default_value;
  std::optional<double> minimum, maximum;
  std::vector<std::string> choices;  // strings only; empty: any
  std::string description;           // what it changes, for admins
};

struct ProcessorInfo {
  std::string name, version, description;
  std::string report_title;             // the PDF report's and the Encapsulated PDF's title
  std::vector<std::string> modalities;  // accepted (0008,0060) values; empty: any
  std::size_t min_slices = 1;
  bool has_gpu_implementation = false;
  double gpu_bytes_per_voxel = 0;       // device memory it needs, per input voxel
  double host_bytes_per_voxel = 8;      // host memory it needs, per input voxel (the volume and its work)
  std::vector<ParameterSpec> parameters;
  // "native" (built in) or "external" (a tool run in a sandbox, processors/external/).
  std::string kind = "native";
  bool requires_gpu = false;            // only runs on a GPU (external tools that say so)
  uint64_t gpu_bytes_fixed = 0;         // device memory it needs whatever the input's size
  uint64_t host_bytes_fixed = 0;        // host memory it needs besides the per-voxel part
  nlohmann::json details;               // extra for REST and the command line (a tool's manifest); null: none
  // The result kinds ("pdf", "seg", "sr", "derived", "sc") written when a rule names none; empty:
  // every kind that applies to the output.
  std::vector<std::string> default_results;
};

// A region of interest on the input's grid (one byte per input voxel, non-zero inside): an
// RTSTRUCT ROI or a SEG segment of the study, or a mask given on the command line.
struct RegionMask {
  std::string name;    // "GTV-1", "segment 2: Liver", "label 1"
  std::string source;  // "RTSTRUCT", "SEG", "NIfTI mask"
  std::vector<uint8_t> voxels;
  // Other names it answers to: a SEG segment's number, label, and property code value and meaning.
  std::vector<std::string> aliases;
  // What it is, where the source says (a SEG segment's property category and type).
  std::optional<Code> category, type;
};

// A file a processor made besides its labels (a derived image), kept with the job.
struct OutputFile {
  std::string name;   // a plain file name
  std::string bytes;
  std::string description;
};

// An image a processor derived from its input, on the input's grid (one value per input voxel),
// written back by the "derived" result writer as a new image series beside the source (same
// geometry and frame of reference; results/derived_series.h).
struct DerivedImage {
  std::string name;                 // what it is, short: "normalized", "bias-field"
  std::string series_description;   // the derived series' SeriesDescription
  std::string derivation_description;  // (0008,2111): how it was made, in words
  std::vector<Code> derivation_codes;  // CID 7203 Image Derivation
  std::vector<float> voxels;
  // The smallest step between values that matters: the writer's rescale keeps it (0: as fine as
  // 16 bits allow over the values' range).
  double precision = 0;
};

struct LabelName {
  int value = 0;
  std::string name;
};

// A view a processor asks for in its PDF report, instead of the default axial and coronal slices
// through the most labelled voxels: a slice of the input with the labels, and text marks.
struct KeyViewMark {
  std::array<double, 3> voxel{0, 0, 0};  // voxel indices (i, j, k), fractional allowed
  std::string text;
};

struct KeyView {
  std::string plane = "axial";  // "axial" (index: k), "coronal" (j) or "sagittal" (i)
  std::size_t index = 0;
  double window_centre = 400, window_width = 1800;  // bone window
  std::string caption;
  std::vector<KeyViewMark> marks;
};

struct ProcessorOutput {
  nlohmann::json measurements = nlohmann::json::object();  // recorded on the job; no PHI
  std::vector<uint8_t> labels;            // empty, or one per input voxel
  std::vector<LabelName> label_names;
  std::vector<ResultSegment> segments;    // SEG segments and SR measurement groups, over `labels`
  std::vector<ReportSection> report;      // figures for the PDF report
  std::vector<std::string> warnings;
  std::string device;                     // "cpu" or "cuda:0 <name>": what ran
  std::string device_note;                // why the CPU ran when a GPU was preferred
  std::vector<OutputFile> files;          // derived images and the like, kept with the job
  std::vector<DerivedImage> derived;      // images on the input's grid, written back as DICOM series
  nlohmann::json run;                     // how an external tool ran (provenance); null for natives
  std::vector<KeyView> key_views;         // empty: the default key images
  std::vector<LegendEntry> key_legend;    // the key images' legend; empty: one entry per segment
};

struct ProcessorContext {
  DevicePreference device = DevicePreference::kAuto;
  std::function<void(double fraction, const std::string& step)> progress;  // optional
  std::function<bool()> stop_requested;                                    // optional
  // The input series' BIDS sidecar as the converter made it (no PHI); null when not known.
  const nlohmann::json* sidecar = nullptr;
  // Writes the input series' instances (de-identified on an anonymized route) as DICOM files
  // into an existing folder; optional (a processor that needs them and gets none fails).
  std::function<void(const std::string& folder)> write_source_dicom;
  // The regions of interest on the input's grid: the study's RTSTRUCT ROIs and SEG segments (and masks the caller
  // adds); optional (a processor that needs them and gets none fails). Errors name the object.
  std::function<std::vector<RegionMask>()> regions;
  // Runs another processor of the node on the same input volume, with `parameters` (an object;
  // defaults fill the rest) and returns its output: a chain such as lung-emphysema -> radiomics,
  // whose labels become the next one's regions. Optional; the processor it runs gets none (no
  // deeper chains). Errors name the processor.
  std::function<ProcessorOutput(const std::string& processor, const nlohmann::json& parameters)> run_processor;
  // The caller keeps only the measurements (a batch writing one CSV row per case): a processor may
  // leave out its files, labels, segments and report.
  bool measurements_only = false;
};

class Processor {
 public:
  virtual ~Processor() = default;
  virtual const ProcessorInfo& Info() const = 0;
  // `parameters` as returned by ResolveParameters(Info(), ...).
  virtual ProcessorOutput Run(const Volume& volume, const nlohmann::json& parameters, const ProcessorContext& context) const = 0;
};

// The processors a node runs, by name, in registration order. Routing's vocabulary, the pipeline,
// REST and the command line are given a registry; none of them names a processor.
class ProcessorRegistry {
 public:
  // Error(kInvalidInput) when the name is empty or already registered.
  void Add(std::unique_ptr<Processor> processor);
  // nullptr when unknown.
  const Processor* Find(const std::string& name) const;
  // Error(kInvalidInput) listing the known ones when unknown.
  const Processor& Get(const std::string& name) const;
  std::vector<const Processor*> All() const;

 private:
  std::vector<std::unique_ptr<Processor>> processors_;
};

// `given` (an object) checked against the declared parameters, with defaults for the missing ones.
nlohmann::json ResolveParameters(const ProcessorInfo& info, const nlohmann::json& given);
// The parameters as a JSON Schema (draft 2020-12) object.
nlohmann::json ParameterSchema(const ProcessorInfo& info);
// Name, version, inputs, device needs and parameter schema.
nlohmann::json ProcessorJson(const ProcessorInfo& info);
// Empty when the processor accepts the volume; otherwise why not.
std::string RejectionReason(const ProcessorInfo& info, const Volume& volume);

// A chain's first step (ProcessorContext::run_processor): `name` of `registry` run on `volume` for
// the processor `caller`, with `given` parameters checked against its schema and `inner` as its
// context (its run_processor is cleared: no deeper chains). Error(kInvalidInput) when it is
// unknown, is the caller itself, or does not accept the volume (naming it and why).
ProcessorOutput RunChained(const ProcessorRegistry& registry, const std::string& caller, const Volume& volume, ProcessorContext inner,
                           const std::string& name, const nlohmann::json& given);

}  // namespace procnode
