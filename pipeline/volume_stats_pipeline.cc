#include "pipeline/volume_stats_pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/digest.h"
#include "core/error.h"
#include "core/version.h"
#include "nifti/series_to_nifti.h"
#include "processors/series_volume.h"
#include "reports/encapsulated_pdf.h"
#include "reports/pdf_report.h"

namespace procnode {
namespace {

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string Grouped(uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(' ');
    out.push_back(digits[i]);
  }
  return out;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

// Times stages, reports progress, honours stop requests and test hooks.
class Stages {
 public:
  explicit Stages(const PipelineContext& ctx) : ctx_(ctx) {}

  void Begin(const std::string& name, double fraction) {
    CheckStop(name);
    current_ = name;
    started_ = std::chrono::steady_clock::now();
    if (ctx_.progress) ctx_.progress(fraction, name);
  }
  void End() {
    timings_[current_] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    if (ctx_.after_stage) ctx_.after_stage(current_);
  }
  void CheckStop(const std::string& where) const {
    if (ctx_.stop_requested && ctx_.stop_requested()) {
      throw Error(ErrorCode::kCancelled, "stopped before stage " + where);
    }
  }
  const nlohmann::json& timings() const { return timings_; }

 private:
  const PipelineContext& ctx_;
  std::string current_;
  std::chrono::steady_clock::time_point started_;
  nlohmann::json timings_ = nlohmann::json::object();
};

ReportContent BuildReport(const SeriesRef& series, const SeriesVolume& loaded, const VolumeStats& stats,
                          const Provenance& provenance, const std::string& when) {
  const Volume& v = loaded.volume;
  const std::string unit = v.units.empty() ? "" : " " + v.units;
  ReportContent report;
  report.title = "Volume statistics";
  report.subtitle = "procnode walking-skeleton pipeline: figures of the largest series of the study";
  ReportSection input{"Input series", {}};
  input.rows = {{"Modality", v.modality.empty() ? "unknown" : v.modality},
                {"Series (Orthanc ID)", series.id},
                {"Instances", std::to_string(series.instance_ids.size())},
                {"Dimensions", std::to_string(v.dims[0]) + " x " + std::to_string(v.dims[1]) + " x " +
                                   std::to_string(v.dims[2]) + " voxels"},
                {"Voxel spacing", Format("%.3f", v.spacing[0]) + " x " + Format("%.3f", v.spacing[1]) +
                                      " x " + Format("%.3f", std::abs(v.spacing[2])) + " mm"}};
  for (const auto& warning : loaded.warnings) input.rows.push_back({"Warning", warning});
  ReportSection figures{v.units.empty() ? "Figures (modality units)" : "Figures (" + v.units + ")", {}};
  figures.rows = {{"Voxel count", Grouped(stats.count)},
                  {"Minimum", Format("%.1f", stats.min) + unit},
                  {"Maximum", Format("%.1f", stats.max) + unit},
                  {"Mean", Format("%.2f", stats.mean) + unit}};
  ReportSection origin{"Provenance", {}};
  origin.rows = {{"Job", provenance.job},
                 {"Rule", provenance.rule},
                 {"Pipeline", std::string(kVolumeStatsPipeline) + "@1"},
                 {"Study (Orthanc ID)", provenance.study_id},
                 {"Computed on", stats.device},
                 {"Node", provenance.node},
                 {"procnode version", kVersion},
                 {"Generated", when}};
  if (!stats.note.empty()) origin.rows.push_back({"Device note", stats.note});
  report.sections = {input, figures, origin};
  report.footer = "procnode " + std::string(kVersion) + "  |  job " + provenance.job + "  |  " + when +
                  "  |  Research use; not for diagnosis.";
  return report;
}

}  // namespace

PipelineResult RunVolumeStatsPipeline(StudySource& source, ResultSink& sink, const PipelineContext& ctx,
                                      const Provenance& provenance) {
  Stages stages(ctx);
  stages.Begin("fetch", 0.0);
  const auto series_list = source.ListSeries(provenance.study_id);
  stages.End();

  stages.Begin("group", 0.02);
  SeriesRef series;
  if (ctx.series_id.empty()) {
    series = LargestInputSeries(series_list);
  } else {
    const auto it = std::find_if(series_list.begin(), series_list.end(), [&](const SeriesRef& s) { return s.id == ctx.series_id; });
    if (it == series_list.end()) throw Error(ErrorCode::kNotFound, "series " + ctx.series_id + " is no longer in the study");
    series = *it;
  }
  stages.End();

  stages.Begin("volume", 0.05);
  LoadCallbacks callbacks;
  callbacks.cancelled = ctx.stop_requested;
  callbacks.progress = [&](std::size_t done, std::size_t total) {
    if (ctx.progress) ctx.progress(0.05 + 0.75 * done / total, "volume: " + std::to_string(done) + "/" + std::to_string(total) + " instances");
  };
  const SeriesVolume loaded = NiftiSeriesVolume(source, series, callbacks);
  stages.End();

  stages.Begin("stats", 0.82);
  const Volume& v = loaded.volume;
  const VolumeStats stats = ComputeStats(v.voxels.data(), v.voxels.size(), ctx.device);
  stages.End();

  stages.Begin("report", 0.88);
  const std::string when = UtcNow();
  PipelineResult result;
  result.pdf = RenderPdfReport(BuildReport(series, loaded, stats, provenance, when), ctx.font_path);
  EncapsulatedPdfSpec spec;
  spec.study = loaded.study;
  spec.series_instance_uid = DerivedUid("procnode/volume-stats/series", provenance.idempotency_key);
  spec.sop_instance_uid = DerivedUid("procnode/volume-stats/encapsulated-pdf", provenance.idempotency_key);
  spec.series_number = ctx.result_series_number;
  spec.series_description = "procnode volume statistics";
  spec.document_title = "Volume statistics";
  spec.software_version = std::string("procnode ") + kVersion;
  spec.sources = loaded.sources;
  spec.pdf = result.pdf;
  const std::string dicom = MakeEncapsulatedPdf(spec);
  stages.End();

  stages.Begin("store", 0.95);
  const std::string stored = sink.Store(dicom, "report-pdf");
  stages.End();

  result.device = stats.device;
  result.summary = {
      {"pipeline", kVolumeStatsPipeline},
      {"series", series.id},
      {"modality", v.modality},
      {"instances", series.instance_ids.size()},
      {"dims", v.dims},
      {"spacing_mm", v.spacing},
      {"units", v.units},
      {"stats", {{"count", stats.count}, {"min", stats.min}, {"max", stats.max}, {"mean", stats.mean}}},
      {"device", stats.device},
      {"warnings", loaded.warnings},
      {"results", nlohmann::json::array({{{"kind", "encapsulated-pdf"}, {"stored", stored},
                                           {"series_number", ctx.result_series_number}}})},
      {"timings_ms", stages.timings()},
  };
  if (!stats.note.empty()) result.summary["device_note"] = stats.note;
  return result;
}

}  // namespace procnode
