#include "pipeline/result_writers.h"

#include <algorithm>

#include "core/digest.h"
#include "core/version.h"
#include "core/error.h"
#include "results/derived_series.h"
#include "results/encapsulated_pdf.h"
#include "results/measurement_report.h"
#include "results/secondary_capture.h"
#include "results/segmentation.h"

namespace procnode {
namespace {

std::string Uid(const ResultInputs& in, const std::string& what) {
  return DerivedUid("procnode/" + in.info.name + "/" + what, in.provenance.idempotency_key);
}

std::string Software() { return std::string("procnode ") + kVersion; }

const ResultObject* Earlier(const std::vector<ResultObject>& earlier, const std::string& kind) {
  const auto it = std::find_if(earlier.begin(), earlier.end(), [&](const ResultObject& o) { return o.kind == kind; });
  return it == earlier.end() ? nullptr : &*it;
}

class EncapsulatedPdfWriter : public ResultWriter {
 public:
  std::string Kind() const override { return "encapsulated-pdf"; }
  int DefaultSeriesNumber() const override { return 9001; }
  bool Essential() const override { return true; }
  bool AppliesTo(const ProcessorOutput&, const std::vector<ResultObject>&) const override { return true; }
  std::vector<ResultObject> Write(const ResultInputs& in, int series_number, const std::vector<ResultObject>&,
                                  std::vector<std::string>&) const override {
    EncapsulatedPdfSpec spec;
    spec.study = in.loaded.study;
    spec.series_instance_uid = Uid(in, "series");
    spec.sop_instance_uid = Uid(in, "encapsulated-pdf");
    spec.series_number = series_number;
    spec.series_description = "procnode " + in.info.name + " report";
    spec.document_title = in.info.report_title.empty() ? in.info.name : in.info.report_title;
    spec.software_version = Software();
    spec.sources = in.loaded.sources;
    spec.pdf = in.report_pdf;
    return {{.kind = Kind(), .stem = "report-pdf", .instances = {MakeEncapsulatedPdf(spec)}, .series_number = series_number,
             .series_instance_uid = spec.series_instance_uid, .sop_instance_uid = spec.sop_instance_uid}};
  }
};

class SegmentationWriter : public ResultWriter {
 public:
  std::string Kind() const override { return "seg"; }
  int DefaultSeriesNumber() const override { return 9002; }
  bool AppliesTo(const ProcessorOutput& output, const std::vector<ResultObject>&) const override {
    return !output.labels.empty() && !output.segments.empty();
  }
  std::vector<ResultObject> Write(const ResultInputs& in, int series_number, const std::vector<ResultObject>&,
                                  std::vector<std::string>& warnings) const override {
    SegmentationSpec seg;
    seg.study = in.loaded.study;
    seg.series_instance_uid = Uid(in, "seg-series");
    seg.sop_instance_uid = Uid(in, "seg");
    seg.series_number = series_number;
    seg.series_description = "procnode " + in.info.name + " segmentation";
    seg.source_series_instance_uid = in.loaded.series_instance_uid;
    seg.sources = in.loaded.sources;
    seg.algorithm_name = "procnode " + in.info.name;
    seg.algorithm_version = in.info.version;
    seg.software_version = Software();
    for (const auto& s : in.output.segments) seg.segments.push_back({s.label, s.category, s.type, s.label_values, s.rgb});
    SegmentationResult made = MakeSegmentation(seg, in.loaded.volume, in.output.labels);
    for (const auto& label : made.omitted) warnings.push_back("segment \"" + label + "\" is empty: left out of the SEG");
    return {{.kind = Kind(), .stem = "seg", .instances = {std::move(made.dicom)}, .series_number = series_number,
             .series_instance_uid = seg.series_instance_uid, .sop_instance_uid = seg.sop_instance_uid,
             .segment_numbers = made.segment_numbers}};
  }
};

class MeasurementReportWriter : public ResultWriter {
 public:
  std::string Kind() const override { return "sr"; }
  int DefaultSeriesNumber() const override { return 9003; }
  bool AppliesTo(const ProcessorOutput&, const std::vector<ResultObject>& earlier) const override {
    return Earlier(earlier, "seg") != nullptr;
  }
  std::vector<ResultObject> Write(const ResultInputs& in, int series_number, const std::vector<ResultObject>& earlier,
                                  std::vector<std::string>&) const override {
    const ResultObject& seg = *Earlier(earlier, "seg");
    MeasurementReportSpec sr;
    sr.study = in.loaded.study;
    sr.series_instance_uid = Uid(in, "sr-series");
    sr.sop_instance_uid = Uid(in, "sr");
    sr.series_number = series_number;
    sr.series_description = "procnode " + in.info.name + " measurements";
    sr.modality_of_sources = in.loaded.volume.modality;
    sr.source_series_instance_uid = in.loaded.series_instance_uid;
    sr.sources = in.loaded.sources;
    sr.segmentation_sop_instance_uid = seg.sop_instance_uid;
    sr.segmentation_series_instance_uid = seg.series_instance_uid;
    sr.device_observer_uid = DerivedUid("procnode/device-observer", in.provenance.node);
    sr.device_observer_name = "procnode " + in.provenance.node;
    sr.processor_name = in.info.name;
    sr.software_version = Software();
    // Segments without measurements (a vertebral body beside its measured ROI) get no group, unless
    // no segment has any.
    const bool any_measured = std::any_of(in.output.segments.begin(), in.output.segments.end(),
                                          [](const ResultSegment& s) { return !s.measurements.empty(); });
    for (std::size_t i = 0; i < in.output.segments.size() && i < seg.segment_numbers.size(); ++i) {
      const auto& s = in.output.segments[i];
      if (seg.segment_numbers[i] == 0 || (any_measured && s.measurements.empty())) continue;
      sr.groups.push_back({s.label, Uid(in, "tracking/" + s.label), s.finding, s.finding_site, seg.segment_numbers[i],
                           s.measurements});
    }
    return {{.kind = Kind(), .stem = "sr", .instances = {MakeMeasurementReport(sr)}, .series_number = series_number,
             .series_instance_uid = sr.series_instance_uid, .sop_instance_uid = sr.sop_instance_uid}};
  }
};

// One derived image series per image the processor derived (the normalized image, the bias
// field), numbered from the writer's series number up.
class DerivedSeriesWriter : public ResultWriter {
 public:
  std::string Kind() const override { return "derived"; }
  int DefaultSeriesNumber() const override { return 9004; }
  bool AppliesTo(const ProcessorOutput& output, const std::vector<ResultObject>&) const override { return !output.derived.empty(); }
  std::vector<ResultObject> Write(const ResultInputs& in, int series_number, const std::vector<ResultObject>&,
                                  std::vector<std::string>&) const override {
    std::vector<ResultObject> objects;
    for (std::size_t d = 0; d < in.output.derived.size(); ++d) {
      const DerivedImage& image = in.output.derived[d];
      DerivedSeriesSpec spec;
      spec.study = in.loaded.study;
      spec.series_instance_uid = Uid(in, "derived/" + image.name + "/series");
      for (std::size_t k = 0; k < in.loaded.sources.size(); ++k) {
        spec.sop_instance_uids.push_back(Uid(in, "derived/" + image.name + "/" + std::to_string(k)));
      }
      spec.series_number = series_number + static_cast<int>(d);
      spec.series_description = "procnode " + in.info.name + ": " + image.series_description;
      spec.derivation_description = image.derivation_description;
      spec.derivation_codes = image.derivation_codes;
      spec.sources = in.loaded.sources;
      spec.acquisition = in.loaded.acquisition;
      spec.software_version = Software();
      spec.precision = image.precision;
      DerivedSeries made = MakeDerivedSeries(spec, in.loaded.volume, image.voxels);
      objects.push_back({.kind = Kind(), .stem = "derived-" + image.name, .instances = std::move(made.instances),
                         .series_number = spec.series_number, .series_instance_uid = spec.series_instance_uid,
                         .sop_instance_uid = spec.sop_instance_uids.front()});
    }
    return objects;
  }
};

// The report's key images as Secondary Capture, for PACS that cannot display SEG.
class SecondaryCaptureWriter : public ResultWriter {
 public:
  std::string Kind() const override { return "sc"; }
  int DefaultSeriesNumber() const override { return 9006; }
  bool ByDefault() const override { return false; }  // the SEG shows the same; asked for by rules for PACS without SEG
  bool AppliesTo(const ProcessorOutput& output, const std::vector<ResultObject>&) const override {
    return !output.labels.empty() && !output.segments.empty();
  }
  std::vector<ResultObject> Write(const ResultInputs& in, int series_number, const std::vector<ResultObject>&,
                                  std::vector<std::string>&) const override {
    const auto& images = in.key_images.images;
    if (images.empty()) return {};
    SecondaryCaptureSpec spec;
    spec.study = in.loaded.study;
    spec.series_instance_uid = Uid(in, "sc/series");
    for (std::size_t k = 0; k < images.size(); ++k) spec.sop_instance_uids.push_back(Uid(in, "sc/" + std::to_string(k)));
    spec.series_number = series_number;
    spec.series_description = "procnode " + in.info.name + " key images";
    spec.modality = in.loaded.volume.modality;
    spec.source_series_instance_uid = in.loaded.series_instance_uid;
    spec.software_version = Software();
    std::string legend;
    for (const auto& entry : in.key_images.legend) legend += (legend.empty() ? "" : "; ") + entry.label;
    spec.legend = "procnode " + in.info.name + " labels over the source image" + (legend.empty() ? "" : ": " + legend);
    return {{.kind = Kind(), .stem = "sc", .instances = MakeSecondaryCaptures(spec, images), .series_number = series_number,
             .series_instance_uid = spec.series_instance_uid, .sop_instance_uid = spec.sop_instance_uids.front()}};
  }
};

}  // namespace

const std::vector<const ResultWriter*>& DefaultResultWriters() {
  static const EncapsulatedPdfWriter pdf;
  static const SegmentationWriter seg;
  static const MeasurementReportWriter sr;
  static const DerivedSeriesWriter derived;
  static const SecondaryCaptureWriter sc;
  static const std::vector<const ResultWriter*> writers{&pdf, &seg, &sr, &derived, &sc};
  return writers;
}

std::vector<std::string> ResultKinds() {
  std::vector<std::string> kinds;
  for (const ResultWriter* w : DefaultResultWriters()) kinds.push_back(w->Kind());
  return kinds;
}

std::vector<std::string> ResultNames() {
  std::vector<std::string> names;
  for (const std::string& kind : ResultKinds()) names.push_back(kind == "encapsulated-pdf" ? "pdf" : kind);
  return names;
}

std::string ResultKindOfName(const std::string& name) {
  const auto names = ResultNames();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw Error(ErrorCode::kInvalidInput, "unknown result kind \"" + name + "\" (known: " + known + ")");
  }
  return ResultKinds()[it - names.begin()];
}

}  // namespace procnode
