// The result writers: each turns what a processor returned into one DICOM object of the source
// study, and decides for itself whether it applies to that output. The pipeline runs the list in
// order (a writer sees the objects written before it: the SR references the SEG) and knows no
// result kind by name; a new kind (derived image series, secondary capture) is a new writer in
// the list. Series numbers come from the node's configuration per kind (ProcNode.ResultSeriesNumbers),
// each writer's default otherwise. UIDs derive from the job's idempotency key, so a job that runs
// twice writes the same instances again. Stateless and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/report_section.h"
#include "processors/processor.h"
#include "processors/series_volume.h"

namespace procnode {

// Who asked for the run: printed in the report and recorded in the result. No PHI.
struct Provenance {
  std::string job;              // job id, or "cli"
  std::string rule;             // "id@version"
  std::string node;
  std::string study_id;         // Orthanc study ID or folder
  std::string idempotency_key;  // seeds the result UIDs
};

// What the writers are given: the processor and its output, the input series as loaded (the
// study identity the results carry: pseudonymous on an anonymized route), the run's provenance
// and the rendered PDF report.
struct ResultInputs {
  const ProcessorInfo& info;
  const ProcessorOutput& output;
  const SeriesVolume& loaded;
  const Provenance& provenance;
  const std::string& report_pdf;
  const ReportSection& key_images;  // the report's key images and their legend; no images when there are none
};

struct ResultObject {
  std::string kind;  // the writer's kind: "encapsulated-pdf", "seg", "sr", "derived"
  std::string stem;  // what the sink names it by: "report-pdf", "seg", "sr", "derived-normalized"
  // DICOM Part 10: one object, or a series' instances in order (a derived series; the sink names
  // each STEM/0001, STEM/0002, ...).
  std::vector<std::string> instances;
  int series_number = 0;
  std::string series_instance_uid, sop_instance_uid;  // the (first) instance's
  std::vector<int> segment_numbers;  // a SEG: each output segment's number (0: left out, empty)
};

class ResultWriter {
 public:
  virtual ~ResultWriter() = default;
  virtual std::string Kind() const = 0;
  virtual int DefaultSeriesNumber() const = 0;
  // Essential: its failure fails the job (the report). Otherwise a failure costs the job this
  // object and adds a warning; later writers that need it do not apply.
  virtual bool Essential() const { return false; }
  // Written when neither the rule ("results") nor the processor (default_results) names the kinds.
  virtual bool ByDefault() const { return true; }
  virtual bool AppliesTo(const ProcessorOutput& output, const std::vector<ResultObject>& earlier) const = 0;
  // The objects it made: one, or several (a derived series per derived image). Adds what the
  // reader of the results should know (a segment left out) to `warnings`.
  virtual std::vector<ResultObject> Write(const ResultInputs& inputs, int series_number, const std::vector<ResultObject>& earlier,
                             std::vector<std::string>& warnings) const = 0;
};

// procnode's writers, in order: the report as Encapsulated PDF, a SEG where the processor labelled
// segments, an SR (TID 1500) of the segments' measurements where the SEG was written, a derived
// image series per image the processor derived (results/derived_series.h), the report's key images
// as Secondary Capture (results/secondary_capture.h; written only where a rule or the processor's
// defaults ask for "sc").
const std::vector<const ResultWriter*>& DefaultResultWriters();

// The kinds of DefaultResultWriters(), for checking configuration.
std::vector<std::string> ResultKinds();

// A rule's "results" names ("pdf", "seg", "sr", "derived", ...) as writer kinds ("pdf" is the
// "encapsulated-pdf" writer); Error(kInvalidInput) naming an unknown one and the known ones.
std::string ResultKindOfName(const std::string& name);
// The names a rule may list, in writer order.
std::vector<std::string> ResultNames();

}  // namespace procnode
