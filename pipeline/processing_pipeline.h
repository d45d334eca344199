// The processing pipeline: study -> input series -> volume (through the NIfTI converter) ->
// processor (given by the caller, from its registry) -> a PDF report (figures, method and
// provenance) -> the result writers (result_writers.h: Encapsulated PDF, SEG, SR), each object
// stored as a new series of the same study. The measurements go into the job's summary. The
// pipeline names no processor and no result kind.
//
// The input series is the job's series (series-level rules) or the study's largest series that
// the processor accepts (modality); a series it does not accept is Error(kInvalidInput) naming
// the series and the reason. Result UIDs derive from the job's idempotency key, so a job that
// runs twice (its first worker died after storing) stores the same instance again, and the study
// keeps one result series. Stops with Error(kCancelled) when ctx.stop_requested() turns true
// between stages or inside the volume and processor stages; other errors propagate as thrown by
// the stages (they name the instance and the reason).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "anonymizer/deidentify.h"
#include "core/study.h"
#include "core/volume.h"
#include "pipeline/result_writers.h"
#include "processors/processor.h"

namespace procnode {

struct PipelineContext {
  std::function<void(double fraction, const std::string& message)> progress;  // optional
  std::function<bool()> stop_requested;                                       // optional
  std::function<void(const std::string& stage)> after_stage;                  // optional (test hooks)
  DevicePreference device = DevicePreference::kAuto;
  std::string font_path;
  // Result series numbers by writer kind ("encapsulated-pdf", "seg", "sr"); a kind not here takes
  // its writer's default (9001, 9002, 9003).
  std::map<std::string, int> result_series_numbers;
  // The result kinds to write, by name ("pdf", "seg", "sr", "derived", ...: a rule's "results");
  // empty: the processor's default_results, or every writer that applies when it has none.
  std::vector<std::string> results;
  // The result writers, in order; null: DefaultResultWriters().
  const std::vector<const ResultWriter*>* writers = nullptr;
  std::string series_id;  // a series-level job's series; empty: the study's largest accepted series
  // The node's processors, for a processor that runs another on the same input (radiomics'
  // regions_from); null: such a chain fails with the reason.
  const ProcessorRegistry* registry = nullptr;
  // Regions the caller adds to the study's own (a NIfTI mask on the command line), on the loaded
  // volume's grid; optional.
  std::function<std::vector<RegionMask>(const Volume& volume)> extra_regions;
  // Where files a processor made besides its labels (an external tool's derived images and logs)
  // are kept; empty: they are listed on the job but not kept.
  std::string keep_files_in;
  // An anonymized route: every instance is de-identified before any stage sees it; results carry
  // the pseudonym and remapped UIDs, pass the leak gate, and `keep_identity` (the PHI vault) is
  // called for each patient before anything is stored. Null: a clinical route.
  const DeidentifyOptions* anonymize = nullptr;
  std::function<void(const std::string& pseudonym, const PatientIdentity& identity,
                     const std::map<std::string, std::string>& uid_map)>
      keep_identity;
  // An anonymized route whose results go back to the clinical study: the pseudonym's identity and
  // UID map (remapped -> original) through the vault; the results are then written for the real
  // patient and reference the original instances. Null: results stay pseudonymous.
  std::function<std::pair<PatientIdentity, std::map<std::string, std::string>>(const std::string& pseudonym)> return_to_clinical;
};

struct PipelineResult {
  nlohmann::json summary;  // recorded on the job: measurements, series, stored results, timings
  std::string device;
  std::string pdf;         // the report, for callers that also want the bare PDF
  Volume volume;           // the input volume (for label files and key images)
  ProcessorOutput output;  // labels and measurements as the processor returned them
  bool anonymized = false; // an anonymized route ran
};

// The series a job of `info` runs on: `wanted` (a series-level job's; Error(kNotFound) when it is
// gone), else the study's largest input series of a modality the processor accepts
// (Error(kInvalidInput) naming the modalities when there is none).
SeriesRef PickSeries(const ProcessorInfo& info, const std::vector<SeriesRef>& series_list, const std::string& wanted);

// The study's regions of interest on `volume`'s grid: every ROI of its RTSTRUCTs and every segment
// of its SEGs that has a voxel there (radiomics/rtstruct.h, radiomics/segmentation.h), leaving out
// those of another frame of reference than `frame_of_reference` (another image of the study).
// Errors name the object.
std::vector<RegionMask> StudyRegions(StudySource& source, const std::vector<SeriesRef>& series_list, const Volume& volume,
                                     const std::string& frame_of_reference);

// `parameters`: the rule's (or command line's) object; defaults fill the rest.
PipelineResult RunPipeline(const Processor& processor, const nlohmann::json& parameters, StudySource& source,
                           ResultSink& sink, const PipelineContext& ctx, const Provenance& provenance);

}  // namespace procnode
