#include "pipeline/processing_pipeline.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>
#include <memory>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "core/format.h"
#include "core/text.h"
#include "core/version.h"
#include "nifti/series_to_nifti.h"
#include "processors/radiomics/rtstruct.h"
#include "processors/radiomics/segmentation.h"
#include "processors/series_volume.h"
#include "anonymizer/anonymizing_source.h"
#include "anonymizer/leak_checker.h"
#include "dicom/io.h"
#include "results/key_images.h"
#include "results/pdf_report.h"

namespace procnode {
namespace {

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

// Axial and coronal slices through the most labelled voxels, lung window, segments in colour (a
// label value takes the colour of the last segment holding it, so emphysema shows over its lung).
ReportSection KeyImages(const Volume& v, const ProcessorOutput& output) {
  ReportSection section{"Key images"};
  std::map<int, LabelColour> colours;
  for (const auto& segment : output.segments) {
    for (const int value : segment.label_values) {
      colours[value] = {value, {static_cast<uint8_t>(segment.rgb[0]), static_cast<uint8_t>(segment.rgb[1]), static_cast<uint8_t>(segment.rgb[2])},
                        segment.label_values.size() > 1 && value == segment.label_values.front() ? 0.35 : 0.8};
    }
    if (output.key_legend.empty()) section.legend.push_back({segment.rgb, segment.label});
  }
  if (!output.key_legend.empty()) section.legend = output.key_legend;
  KeyImageSpec spec;
  for (const auto& [value, colour] : colours) spec.colours.push_back(colour);
  for (const auto& view : output.key_views) {  // the processor's own choice of views
    spec.plane = view.plane == "sagittal" ? ViewPlane::kSagittal : view.plane == "coronal" ? ViewPlane::kCoronal : ViewPlane::kAxial;
    spec.index = view.index;
    spec.window_centre = view.window_centre;
    spec.window_width = view.window_width;
    const RgbImage image = RenderKeyImage(v, output.labels, spec);
    ReportImage shown{image.width, image.height, image.rgb, view.caption, {}};
    for (const auto& mark : view.marks) {
      const auto at = KeyImagePosition(v, spec, mark.voxel);
      shown.marks.push_back({at[0], at[1], mark.text});
    }
    section.images.push_back(std::move(shown));
  }
  if (!output.key_views.empty()) return section;
  for (const auto& [plane, name] : {std::pair{ViewPlane::kAxial, "axial"}, std::pair{ViewPlane::kCoronal, "coronal"}}) {
    spec.plane = plane;
    spec.index = BusiestIndex(v, output.labels, plane);
    const RgbImage image = RenderKeyImage(v, output.labels, spec);
    section.images.push_back({image.width, image.height, image.rgb,
                              std::string(name) + (plane == ViewPlane::kAxial ? ", slice " : ", row ") + std::to_string(spec.index + 1) +
                                  " (patient right on the left)"});
  }
  return section;
}

// A DICOM string for the PDF (UTF-8): Latin-1 (ISO_IR 100) converted, UTF-8 (ISO_IR 192) and ASCII
// kept, other character sets' bytes above 127 shown as '?'; person names "FAMILY^GIVEN" as
// "FAMILY, GIVEN"; empty as "-".
std::string ReportText(const std::string& value, const std::string& charset, bool person_name) {
  std::string text;
  for (const unsigned char c : value) {
    if (c < 0x80) {
      text.push_back(static_cast<char>(c));
    } else if (charset.find("ISO_IR 192") != std::string::npos) {
      text.push_back(static_cast<char>(c));
    } else if (charset.find("ISO_IR 100") != std::string::npos) {
      text.push_back(static_cast<char>(0xC0 | (c >> 6)));
      text.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      text.push_back('?');
    }
  }
  if (person_name) {
    std::string out;
    const std::string alphabetic = text.substr(0, text.find('='));
    std::vector<std::string> parts = Split(alphabetic, '^');
    parts.erase(std::remove(parts.begin(), parts.end(), std::string()), parts.end());
    for (std::size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? "" : i == 1 ? ", " : " ") + parts[i];
    text = out;
  }
  return text.empty() ? "-" : text;
}

// "20200115" -> "2020-01-15"; empty -> "-".
std::string DicomDateText(const std::string& date) {
  if (date.size() >= 8) return date.substr(0, 4) + "-" + date.substr(4, 2) + "-" + date.substr(6, 2);
  return date.empty() ? "-" : date;
}

// "volume 77 ms, process 912 ms".
std::string TimingText(const nlohmann::json& timings) {
  std::string text;
  for (const auto& [stage, ms] : timings.items()) {
    text += (text.empty() ? "" : ", ") + stage + " " + std::to_string(static_cast<long>(ms.get<double>() + 0.5)) + " ms";
  }
  return text;
}

// "name value, name value" (wraps in the report, unlike JSON without spaces).
std::string ParameterText(const nlohmann::json& parameters) {
  std::string text;
  for (const auto& [key, value] : parameters.items()) {
    text += (text.empty() ? "" : ", ") + key + " " + (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return text.empty() ? "none" : text;
}

ReportContent BuildReport(const ProcessorInfo& info, const SeriesRef& series, const SeriesVolume& loaded,
                          const ProcessorOutput& output, const std::optional<ReportSection>& key_images,
                          const nlohmann::json& parameters, const Provenance& provenance, const std::string& when,
                          const nlohmann::json& timings) {
  const Volume& v = loaded.volume;
  ReportContent report;
  report.title = info.report_title.empty() ? info.name : info.report_title;
  report.subtitle = "procnode " + info.name + " " + info.version + ", on the study's " + (v.modality.empty() ? "input" : v.modality) + " series";
  // Who the report is about, as the source study says (pseudonymous on an anonymized route, where
  // the source is the de-identified copy): a clinical report must identify its patient.
  const StudyIdentity& who = loaded.study;
  ReportSection patient{"Patient and study", {}};
  patient.rows = {{"Patient", ReportText(who.patient_name, who.specific_character_set, true) + "   ID " +
                                  ReportText(who.patient_id, who.specific_character_set, false) + "   born " +
                                  DicomDateText(who.patient_birth_date) + "   sex " + (who.patient_sex.empty() ? "-" : who.patient_sex)},
                  {"Study", DicomDateText(who.study_date) + "   accession " +
                                ReportText(who.accession_number, who.specific_character_set, false)}};
  report.sections.push_back(patient);
  ReportSection input{"Input series", {}};
  input.rows = {{"Series", (v.modality.empty() ? std::string("unknown modality") : v.modality) + ", " +
                               std::to_string(series.instance_ids.size()) + " instances, " + std::to_string(v.dims[0]) + " x " +
                               std::to_string(v.dims[1]) + " x " + std::to_string(v.dims[2]) + " voxels of " +
                               FormatNumber("%.3f", v.spacing[0]) + " x " + FormatNumber("%.3f", v.spacing[1]) + " x " +
                               FormatNumber("%.3f", std::abs(v.spacing[2])) + " mm"},
                {"Series (Orthanc ID)", provenance.study_id.rfind("pseudonymous", 0) == 0 ? "pseudonymous" : series.id}};
  for (const auto& warning : loaded.warnings) input.rows.push_back({"Warning", warning});
  if (key_images) report.sections.push_back(*key_images);
  for (const auto& section : output.report) report.sections.push_back(section);
  report.sections.push_back(input);
  ReportSection origin{"Provenance", {}};
  origin.rows = {{"Job", provenance.job},
                 {"Rule", provenance.rule},
                 {"Processor", info.name + "@" + info.version},
                 {"Parameters", ParameterText(parameters)},
                 {"Study (Orthanc ID)", provenance.study_id},
                 {"Computed on", output.device},
                 {"Timings", TimingText(timings)},
                 {"Node", provenance.node},
                 {"Generated", "by procnode " + std::string(kVersion) + ", " + when}};
  if (!output.device_note.empty()) origin.rows.push_back({"Device note", output.device_note});
  for (const auto& warning : output.warnings) origin.rows.push_back({"Warning", warning});
  report.sections.push_back(origin);
  report.footer = "procnode " + std::string(kVersion) + "  |  job " + provenance.job + "  |  " + when +
                  "  |  Research use; not for diagnosis.";
  return report;
}

}  // namespace

// The job's series, or the largest input series of a modality the processor accepts.
SeriesRef PickSeries(const ProcessorInfo& info, const std::vector<SeriesRef>& series_list, const std::string& wanted) {
  if (!wanted.empty()) {
    const auto it = std::find_if(series_list.begin(), series_list.end(), [&](const SeriesRef& s) { return s.id == wanted; });
    if (it == series_list.end()) throw Error(ErrorCode::kNotFound, "series " + wanted + " is no longer in the study");
    return *it;
  }
  if (info.modalities.empty()) return LargestInputSeries(series_list);
  std::vector<SeriesRef> accepted;
  for (const auto& s : series_list) {
    if (std::find(info.modalities.begin(), info.modalities.end(), s.modality) != info.modalities.end()) accepted.push_back(s);
  }
  if (accepted.empty() || std::all_of(accepted.begin(), accepted.end(), [](const SeriesRef& s) { return s.produced_by_procnode; })) {
    std::string modalities;
    for (const auto& m : info.modalities) modalities += (modalities.empty() ? "" : ", ") + m;
    throw Error(ErrorCode::kInvalidInput, info.name + ": the study has no " + modalities + " series");
  }
  return LargestInputSeries(accepted);
}

std::vector<RegionMask> StudyRegions(StudySource& source, const std::vector<SeriesRef>& series_list, const Volume& v,
                                     const std::string& frame_of_reference) {
  std::vector<RegionMask> regions;
  for (const auto& s : series_list) {
    if (s.modality == "SEG") {
      for (const auto& id : s.instance_ids) {
        for (auto& segment : radiomics::ReadSegmentation(source.FetchInstance(id), "SEG instance " + id, v, frame_of_reference)) {
          if (std::none_of(segment.voxels.begin(), segment.voxels.end(), [](uint8_t m) { return m != 0; })) continue;
          std::vector<std::string> aliases{std::to_string(segment.number), segment.label};
          if (!segment.code_value.empty()) aliases.push_back(segment.code_value);
          if (!segment.code_meaning.empty()) aliases.push_back(segment.code_meaning);
          RegionMask region{.name = "segment " + std::to_string(segment.number) + ": " + segment.label,
                            .source = "SEG",
                            .voxels = std::move(segment.voxels),
                            .aliases = std::move(aliases)};
          if (!segment.code_value.empty()) region.type = Code{segment.code_value, segment.code_scheme, segment.code_meaning};
          if (!segment.category_value.empty()) region.category = Code{segment.category_value, segment.category_scheme, segment.category_meaning};
          regions.push_back(std::move(region));
        }
      }
    }
    if (s.modality != "RTSTRUCT") continue;
    for (const auto& id : s.instance_ids) {
      const std::string name = "RTSTRUCT instance " + id;
      for (const auto& roi : radiomics::ReadStructureSet(source.FetchInstance(id), name)) {
        if (!frame_of_reference.empty() && !roi.frame_of_reference_uid.empty() && roi.frame_of_reference_uid != frame_of_reference) continue;
        auto voxels = radiomics::RasteriseRoi(roi, v);
        if (std::none_of(voxels.begin(), voxels.end(), [](uint8_t m) { return m != 0; })) continue;
        regions.push_back({.name = roi.name, .source = "RTSTRUCT", .voxels = std::move(voxels)});
      }
    }
  }
  return regions;
}

PipelineResult RunPipeline(const Processor& processor, const nlohmann::json& given_parameters, StudySource& clinical_source,
                           ResultSink& sink, const PipelineContext& ctx, const Provenance& clinical_provenance) {
  std::unique_ptr<AnonymizingStudySource> anonymizing;
  if (ctx.anonymize) anonymizing = std::make_unique<AnonymizingStudySource>(clinical_source, *ctx.anonymize);
  StudySource& source = anonymizing ? static_cast<StudySource&>(*anonymizing) : clinical_source;
  // On an anonymized route the report names no clinical identifier (Orthanc IDs derive from them).
  Provenance provenance = clinical_provenance;
  if (anonymizing) provenance.study_id = "pseudonymous (anonymized route)";
  const ProcessorInfo& info = processor.Info();
  const nlohmann::json parameters = ResolveParameters(info, given_parameters);
  // The result kinds asked for (by the rule, else the processor's defaults; none named: every
  // writer that writes by default), checked before any work.
  std::set<std::string> wanted;
  for (const auto& name : ctx.results.empty() ? info.default_results : ctx.results) wanted.insert(ResultKindOfName(name));
  Stages stages(ctx);
  stages.Begin("fetch", 0.0);
  const auto series_list = source.ListSeries(clinical_provenance.study_id);
  stages.End();

  stages.Begin("group", 0.02);
  const SeriesRef series = PickSeries(info, series_list, ctx.series_id);
  stages.End();

  stages.Begin("volume", 0.05);
  LoadCallbacks callbacks;
  callbacks.cancelled = ctx.stop_requested;
  callbacks.progress = [&](std::size_t done, std::size_t total) {
    if (ctx.progress) {
      ctx.progress(0.05 + 0.45 * done / total, "volume: reading " + std::to_string(series.instance_ids.size()) +
                                                   " instances, " + std::to_string(100 * done / total) + "%");
    }
  };
  SeriesVolume loaded = NiftiSeriesVolume(source, series, callbacks);
  const Volume& v = loaded.volume;
  if (const std::string reason = RejectionReason(info, v); !reason.empty()) {
    throw Error(ErrorCode::kInvalidInput, "series " + series.id + ": " + reason);
  }
  stages.End();

  stages.Begin("process", 0.5);
  ProcessorContext pctx{.device = ctx.device,
                        .progress = [&](double fraction, const std::string& step) {
                          if (ctx.progress) ctx.progress(0.5 + 0.38 * fraction, info.name + ": " + step);
                        },
                        .stop_requested = ctx.stop_requested,
                        .sidecar = &loaded.sidecar,
                        .write_source_dicom = [&](const std::string& folder) {
                          // The series as this route sees it: de-identified on an anonymized route.
                          int n = 0;
                          for (const auto& id : series.instance_ids) {
                            if (ctx.stop_requested && ctx.stop_requested()) throw Error(ErrorCode::kCancelled, "cancelled");
                            char name[32];
                            std::snprintf(name, sizeof name, "/%06d.dcm", ++n);
                            WriteFileBytes(folder + name, source.FetchInstance(id));
                          }
                        },
                        .regions = [&] {
                          // The study's RTSTRUCT ROIs and SEG segments on the loaded grid (as this
                          // route sees them), then what the caller adds.
                          std::vector<RegionMask> regions = StudyRegions(
                              source, series_list, v, loaded.sources.empty() ? "" : loaded.sources.front().frame_of_reference_uid);
                          if (ctx.extra_regions) {
                            for (auto& r : ctx.extra_regions(v)) regions.push_back(std::move(r));
                          }
                          return regions;
                        }};
  pctx.run_processor = [&](const std::string& name, const nlohmann::json& given) {
    if (ctx.registry == nullptr) throw Error(ErrorCode::kInvalidInput, info.name + ": no processors to chain to \"" + name + "\" here");
    ProcessorContext inner = pctx;
    inner.progress = [&](double fraction, const std::string& step) {
      if (ctx.progress) ctx.progress(0.5 + 0.19 * fraction, name + ": " + step);
    };
    return RunChained(*ctx.registry, info.name, v, std::move(inner), name, given);
  };
  PipelineResult result;
  result.output = processor.Run(v, parameters, pctx);
  stages.End();

  // An anonymized route that returns to the clinical study: the identity comes back through the vault
  // (after it was sealed there) and the results are made for the real patient.
  // Every identity seen, sealed (in the vault) before any result is made from or for it.
  auto seal_identities = [&] {
    if (!ctx.keep_identity) return;
    for (const auto& [pseudonym, patient] : anonymizing->Patients()) ctx.keep_identity(pseudonym, patient.identity, patient.uid_map);
  };
  std::optional<std::map<std::string, std::string>> clinical_uids;
  PatientIdentity clinical;
  if (anonymizing && ctx.return_to_clinical) {
    seal_identities();
    auto [identity, uids] = ctx.return_to_clinical(loaded.study.patient_id);
    clinical = identity;
    clinical_uids = std::move(uids);
    StudyIdentity& study = loaded.study;
    study.patient_name = identity.patient_name;
    study.patient_id = identity.patient_id;
    study.patient_birth_date = identity.birth_date;
    study.patient_sex = identity.sex;
    study.accession_number = identity.accession_number;
    study.study_date = identity.study_date;
    study.study_instance_uid = identity.study_instance_uid;
    provenance.study_id = clinical_provenance.study_id;
  }

  stages.Begin("report", 0.88);
  const std::string when = UtcNow();
  // The key images (labels over the input): drawn once, for the report and the Secondary Capture writer.
  std::optional<ReportSection> key_images;
  if (!result.output.labels.empty() && !result.output.segments.empty()) key_images = KeyImages(v, result.output);
  result.pdf = RenderPdfReport(
      BuildReport(info, series, loaded, result.output, key_images, parameters, provenance, when, stages.timings()), ctx.font_path);
  static const ReportSection kNoKeyImages;
  const ResultInputs inputs{.info = info, .output = result.output, .loaded = loaded, .provenance = provenance,
                            .report_pdf = result.pdf, .key_images = key_images ? *key_images : kNoKeyImages};
  std::vector<ResultObject> objects;
  std::vector<std::string> result_warnings;
  const std::vector<std::string> selectable = ResultKinds();  // a caller's own writers are always run
  for (const ResultWriter* writer : ctx.writers ? *ctx.writers : DefaultResultWriters()) {
    const bool selectable_kind = std::find(selectable.begin(), selectable.end(), writer->Kind()) != selectable.end();
    if (!wanted.empty() && selectable_kind && !wanted.contains(writer->Kind())) continue;
    if (wanted.empty() && !writer->ByDefault()) continue;
    if (!writer->AppliesTo(result.output, objects)) continue;
    const auto configured = ctx.result_series_numbers.find(writer->Kind());
    const int number = configured != ctx.result_series_numbers.end() ? configured->second : writer->DefaultSeriesNumber();
    // A source a writer cannot describe (a SEG of a multi-frame source without plane geometry)
    // costs the job that object (and those made from it), not the report.
    try {
      for (auto& object : writer->Write(inputs, number, objects, result_warnings)) objects.push_back(std::move(object));
    } catch (const Error& e) {
      if (writer->Essential() || e.code() == ErrorCode::kCancelled) throw;
      result_warnings.push_back(writer->Kind() + " not written: " + e.what());
    }
  }
  stages.End();

  if (clinical_uids) {
    // Back on the patient: references to the de-identified instances become the originals.
    auto restore = [&](std::string& bytes, const std::string& kind) {
      auto object = ReadDicomBuffer(bytes, kind);
      Reidentify(*object->getDataset(), clinical, *clinical_uids);
      bytes = WriteDicomBuffer(*object, kind);
    };
    for (auto& object : objects) {
      for (auto& instance : object.instances) restore(instance, object.stem);
    }
  } else if (anonymizing) {
    // The leak gate: no object leaves an anonymized route with a trace of the identities seen.
    const auto terms = anonymizing->PhiTerms();
    for (const auto& made : objects) {
      for (const auto& instance : made.instances) {
        auto object = ReadDicomBuffer(instance, made.stem);
        const auto hits = ScanDataset(*object->getDataset(), terms, made.stem);
        if (!hits.empty()) {
          // A policy outcome, not a fault: the same study would leak the same way on every attempt.
          throw Error(ErrorCode::kInvalidInput, "leak gate: results held, PHI found in " + made.stem + " at " +
                                                    hits.front().where + " (" + std::to_string(hits.size()) + " place(s))");
        }
      }
    }
    seal_identities();
  }

  stages.Begin("store", 0.95);
  nlohmann::json results = nlohmann::json::array();
  for (const auto& object : objects) {
    nlohmann::json entry{{"kind", object.kind}, {"series_number", object.series_number}};
    if (object.instances.size() == 1) {
      entry["stored"] = sink.Store(object.instances.front(), object.stem);
    } else {
      // A series: "stored" is its first instance (as for single objects), "instances" all of them.
      nlohmann::json stored = nlohmann::json::array();
      for (std::size_t i = 0; i < object.instances.size(); ++i) {
        if (ctx.stop_requested && ctx.stop_requested()) throw Error(ErrorCode::kCancelled, "cancelled while storing " + object.stem);
        char suffix[32];
        std::snprintf(suffix, sizeof suffix, "/%04zu", i + 1);
        stored.push_back(sink.Store(object.instances[i], object.stem + suffix));
      }
      entry["stored"] = stored.empty() ? nlohmann::json("") : stored.front();
      entry["instances"] = stored;
      entry["stem"] = object.stem;
    }
    results.push_back(entry);
  }
  stages.End();

  // Files a processor made besides its labels (an external tool's derived images and logs): kept
  // where the caller says, with the job.
  nlohmann::json files = nlohmann::json::array();
  for (const auto& file : result.output.files) {
    nlohmann::json entry{{"name", file.name}, {"bytes", file.bytes.size()}, {"description", file.description}};
    if (!ctx.keep_files_in.empty()) {
      std::filesystem::create_directories(ctx.keep_files_in);
      WriteFileBytes((std::filesystem::path(ctx.keep_files_in) / file.name).string(), file.bytes);
      entry["kept"] = true;
    } else {
      entry["kept"] = false;
    }
    files.push_back(entry);
  }

  result.device = result.output.device;
  if (anonymizing) result.anonymized = true;
  const bool returned = clinical_uids.has_value();
  result.summary = {
      {"pipeline", info.name},
      {"processor_version", info.version},
      {"parameters", parameters},
      {"series", anonymizing && !returned ? std::string("pseudonymous") : series.id},
      {"anonymized", anonymizing != nullptr},
      {"returned_to_clinical_study", returned},
      {"modality", v.modality},
      {"instances", series.instance_ids.size()},
      {"dims", v.dims},
      {"spacing_mm", v.spacing},
      {"units", v.units},
      {"measurements", result.output.measurements},
      {"device", result.output.device},
      {"warnings", loaded.warnings},
      {"results", results},
      {"timings_ms", stages.timings()},
  };
  for (const auto& w : result.output.warnings) result.summary["warnings"].push_back(w);
  for (const auto& w : result_warnings) result.summary["warnings"].push_back(w);
  if (!result.output.device_note.empty()) result.summary["device_note"] = result.output.device_note;
  if (!result.output.run.is_null()) result.summary["tool"] = result.output.run;
  if (!files.empty()) result.summary["files"] = files;
  result.volume = std::move(loaded.volume);
  return result;
}

}  // namespace procnode
