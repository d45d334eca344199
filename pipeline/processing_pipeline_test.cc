#include "pipeline/processing_pipeline.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "dicom/io.h"
#include "dicom/folder_source.h"
#include "pipeline/routing_inputs.h"
#include "processors/builtin.h"

namespace procnode {
namespace {

class MemorySink : public ResultSink {
 public:
  std::string Store(const std::string& bytes, const std::string& stem) override {
    stored.push_back(bytes);
    return "memory/" + stem;
  }
  std::vector<std::string> stored;
};

const std::string kChest = std::string(PROCNODE_SHARED_DATA) + "/ct-chest-lung-dx-a0001/lung-kernel";

Provenance Origin(const std::string& key) {
  return {.job = "7", .rule = "default@1", .node = "test", .study_id = "folder", .idempotency_key = key};
}

std::string Tag(const std::string& dicom, const DcmTagKey& tag) {
  auto file = ReadDicomBuffer(dicom, "result");
  OFString value;
  file->getDataset()->findAndGetOFStringArray(tag, value);
  return value.c_str();
}

TEST(Pipeline, StoresOneEncapsulatedPdfInTheSourceStudyWithTheFigures) {
  FolderStudySource source(kChest);
  MemorySink sink;
  std::vector<std::string> stages;
  PipelineContext ctx{.after_stage = [&](const std::string& s) { stages.push_back(s); },
                      .device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
  const auto result = RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("key-1"));
  EXPECT_EQ(stages, (std::vector<std::string>{"fetch", "group", "volume", "process", "report", "store"}));
  ASSERT_EQ(sink.stored.size(), 1u);
  EXPECT_EQ(result.summary["measurements"]["count"], 512u * 512u * 64u);
  EXPECT_EQ(result.summary["units"], "HU");
  EXPECT_EQ(result.device, "cpu");
  EXPECT_EQ(result.summary["results"][0]["stored"], "memory/report-pdf");
  const std::string& dicom = sink.stored[0];
  EXPECT_EQ(Tag(dicom, DCM_Modality), "DOC");
  EXPECT_EQ(Tag(dicom, DCM_Manufacturer), "procnode");
  auto source_file = ReadDicomBuffer(source.FetchInstance(source.ListSeries("")[0].instance_ids[0]), "ct");
  OFString study_uid;
  source_file->getDataset()->findAndGetOFString(DCM_StudyInstanceUID, study_uid);
  EXPECT_EQ(Tag(dicom, DCM_StudyInstanceUID), study_uid.c_str());
}

TEST(Pipeline, TheSameJobKeyGivesTheSameResultUids) {
  FolderStudySource source(kChest);
  MemorySink sink;
  PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
  RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("key-1"));
  RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("key-1"));
  RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("key-2"));
  ASSERT_EQ(sink.stored.size(), 3u);
  EXPECT_EQ(Tag(sink.stored[0], DCM_SOPInstanceUID), Tag(sink.stored[1], DCM_SOPInstanceUID));
  EXPECT_EQ(Tag(sink.stored[0], DCM_SeriesInstanceUID), Tag(sink.stored[1], DCM_SeriesInstanceUID));
  EXPECT_NE(Tag(sink.stored[0], DCM_SOPInstanceUID), Tag(sink.stored[2], DCM_SOPInstanceUID));
}

TEST(Pipeline, AStopRequestEndsTheRunAsCancelledAndStoresNothing) {
  FolderStudySource source(kChest);
  MemorySink sink;
  bool stop = false;
  PipelineContext ctx{.stop_requested = [&] { return stop; },
                      .after_stage = [&](const std::string& s) { stop = s == "process"; },
                      .device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
  try {
    RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("k"));
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
  EXPECT_TRUE(sink.stored.empty());
}

TEST(Pipeline, AStudyWithOnlyProcnodeResultsHasNoInput) {
  class ResultsOnly : public StudySource {
   public:
    std::vector<SeriesRef> ListSeries(const std::string&) override {
      return {{.id = "r", .modality = "DOC", .instance_ids = {"x"}, .produced_by_procnode = true}};
    }
    std::string FetchInstance(const std::string&) override { return ""; }
  } source;
  MemorySink sink;
  EXPECT_THROW(RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, {.font_path = PROCNODE_FONT}, Origin("k")), Error);
}

// A processor the pipeline has never heard of: bone above a threshold as one segment with its
// volume. Registered into its own registry, it runs through the unchanged pipeline and gets the
// report under its own title, a SEG and an SR, numbered as configured.
class ThresholdProcessor : public Processor {
 public:
  ThresholdProcessor() {
    info_.name = "test-threshold";
    info_.version = "3";
    info_.description = "voxels above a threshold";
    info_.report_title = "Threshold test report";
    info_.parameters = {{"threshold", "number", 300.0, -1024, 3000, {}, "HU"}};
  }
  const ProcessorInfo& Info() const override { return info_; }
  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext&) const override {
    ProcessorOutput out;
    const double threshold = parameters.at("threshold");
    out.labels.resize(v.voxels.size());
    std::size_t count = 0;
    for (std::size_t i = 0; i < v.voxels.size(); ++i) count += out.labels[i] = v.voxels[i] > threshold ? 1 : 0;
    const Code bone{"272673000", "SCT", "Bone"};
    ResultSegment segment{.label = "Dense", .category = {"91723000", "SCT", "Anatomical Structure"}, .type = bone,
                          .label_values = {1}, .rgb = {250, 250, 210}, .finding = bone};
    segment.measurements = {{{"118565006", "SCT", "Volume"}, count * v.spacing[0] * v.spacing[1] * std::abs(v.spacing[2]) / 1000,
                             {"mL", "UCUM", "milliliter"}, std::nullopt}};
    out.segments = {segment};
    out.measurements = {{"count", count}};
    out.report = {{"Figures", {{"Voxels above", std::to_string(count)}}}};
    out.device = "cpu";
    return out;
  }

 private:
  ProcessorInfo info_;
};

TEST(Pipeline, AThirdProcessorRunsThroughTheUnchangedPipelineWithItsTitleAndConfiguredSeriesNumbers) {
  ProcessorRegistry registry;
  RegisterBuiltinProcessors(registry);
  registry.Add(std::make_unique<ThresholdProcessor>());
  FolderStudySource source(kChest);
  MemorySink sink;
  PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT,
                      .result_series_numbers = {{"seg", 4242}}};
  const auto result = RunPipeline(registry.Get("test-threshold"), {{"threshold", 500}}, source, sink, ctx, Origin("k3"));
  ASSERT_EQ(sink.stored.size(), 3u) << result.summary.dump();
  EXPECT_EQ(Tag(sink.stored[0], DCM_Modality), "DOC");
  EXPECT_EQ(Tag(sink.stored[0], DCM_DocumentTitle), "Threshold test report");
  EXPECT_EQ(Tag(sink.stored[0], DCM_SeriesNumber), "9001");
  EXPECT_EQ(Tag(sink.stored[1], DCM_Modality), "SEG");
  EXPECT_EQ(Tag(sink.stored[1], DCM_SeriesNumber), "4242");
  EXPECT_EQ(Tag(sink.stored[2], DCM_Modality), "SR");
  EXPECT_EQ(Tag(sink.stored[2], DCM_SeriesNumber), "9003");
  EXPECT_EQ(result.summary["pipeline"], "test-threshold");
  EXPECT_EQ(result.summary["parameters"]["threshold"], 500);
  EXPECT_GT(result.summary["measurements"]["count"].get<std::size_t>(), 0u);
  EXPECT_EQ(result.summary["results"][1]["kind"], "seg");
  EXPECT_EQ(result.summary["results"][1]["series_number"], 4242);
}

// A writer list given by the caller replaces the default one; a writer decides from the output
// whether it applies, and a failing optional writer costs its object and leaves a warning.
TEST(Pipeline, ResultWritersDecideForThemselvesAndAFailingOptionalOneOnlyWarns) {
  class MeasurementsJson : public ResultWriter {
   public:
    std::string Kind() const override { return "measurements-json"; }
    int DefaultSeriesNumber() const override { return 77; }
    bool AppliesTo(const ProcessorOutput& output, const std::vector<ResultObject>&) const override {
      return output.measurements.contains("count");
    }
    std::vector<ResultObject> Write(const ResultInputs& in, int number, const std::vector<ResultObject>& earlier,
                                    std::vector<std::string>&) const override {
      return {{.kind = Kind(), .stem = "json", .instances = {in.output.measurements.dump() + " after " + earlier.at(0).kind},
               .series_number = number}};
    }
  } json_writer;
  class Failing : public ResultWriter {
   public:
    std::string Kind() const override { return "failing"; }
    int DefaultSeriesNumber() const override { return 78; }
    bool AppliesTo(const ProcessorOutput&, const std::vector<ResultObject>&) const override { return true; }
    std::vector<ResultObject> Write(const ResultInputs&, int, const std::vector<ResultObject>&, std::vector<std::string>&) const override {
      throw Error(ErrorCode::kUnsupported, "cannot describe this source");
    }
  } failing;
  std::vector<const ResultWriter*> writers = DefaultResultWriters();
  writers.push_back(&json_writer);
  writers.push_back(&failing);
  FolderStudySource source(kChest);
  MemorySink sink;
  PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT, .writers = &writers};
  const auto result = RunPipeline(BuiltinProcessors().Get("volume-stats"), {}, source, sink, ctx, Origin("k4"));
  // volume-stats labels nothing: no SEG and no SR; the JSON writer applies (its output has a count).
  ASSERT_EQ(sink.stored.size(), 2u);
  EXPECT_EQ(sink.stored[1].substr(0, 9), "{\"count\":");
  EXPECT_NE(sink.stored[1].find("after encapsulated-pdf"), std::string::npos);
  EXPECT_EQ(result.summary["results"][1]["series_number"], 77);
  EXPECT_NE(result.summary["warnings"].dump().find("failing not written: cannot describe this source"), std::string::npos);
}

// The threshold processor that also derives an image (the input doubled), as mr-normalize does.
class ThresholdWithDerived : public ThresholdProcessor {
 public:
  ProcessorOutput Run(const Volume& v, const nlohmann::json& parameters, const ProcessorContext& context) const override {
    ProcessorOutput out = ThresholdProcessor::Run(v, parameters, context);
    DerivedImage doubled{.name = "double", .series_description = "doubled", .derivation_description = "the input times two",
                         .derivation_codes = {{"113053", "DCM", "Pixel by pixel multiplication"}}, .voxels = v.voxels};
    for (float& x : doubled.voxels) x *= 2;
    out.derived.push_back(std::move(doubled));
    return out;
  }
};

TEST(Pipeline, TheResultKindsChooseTheWritersAndADerivedSeriesIsStoredInstanceByInstance) {
  FolderStudySource source(kChest);
  const ThresholdWithDerived processor;
  auto kinds = [](const PipelineResult& r) {
    std::vector<std::string> out;
    for (const auto& entry : r.summary["results"]) out.push_back(entry["kind"]);
    return out;
  };
  {  // Nobody chose: every writer that writes by default (Secondary Capture does not).
    MemorySink sink;
    PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
    const auto result = RunPipeline(processor, {}, source, sink, ctx, Origin("derived-1"));
    EXPECT_EQ(kinds(result), (std::vector<std::string>{"encapsulated-pdf", "seg", "sr", "derived"}));
    ASSERT_EQ(sink.stored.size(), 3u + 64u);
    const auto& derived = result.summary["results"][3];
    ASSERT_EQ(derived["instances"].size(), 64u);
    EXPECT_EQ(derived["instances"][0], "memory/derived-double/0001");
    EXPECT_EQ(derived["stored"], derived["instances"][0]);
    EXPECT_EQ(derived["series_number"], 9004);
    EXPECT_EQ(Tag(sink.stored[3], DCM_SOPClassUID), "1.2.840.10008.5.1.4.1.1.2");  // CT Image, as its source
    EXPECT_EQ(Tag(sink.stored[3], DCM_ImageType), "DERIVED\\SECONDARY\\OTHER");
    EXPECT_EQ(Tag(sink.stored[3], DCM_SeriesDescription), "procnode test-threshold: doubled");
    EXPECT_EQ(Tag(sink.stored[3], DCM_Manufacturer), "procnode");
  }
  {  // A rule's choice: the report and the key images only.
    MemorySink sink;
    PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
    ctx.results = {"pdf", "sc"};
    const auto result = RunPipeline(processor, {}, source, sink, ctx, Origin("derived-2"));
    EXPECT_EQ(kinds(result), (std::vector<std::string>{"encapsulated-pdf", "sc"}));
    ASSERT_EQ(sink.stored.size(), 3u);  // the report, the axial and the coronal key image
    EXPECT_EQ(Tag(sink.stored[1], DCM_SOPClassUID), "1.2.840.10008.5.1.4.1.1.7");
    EXPECT_EQ(Tag(sink.stored[1], DCM_PhotometricInterpretation), "RGB");
    EXPECT_EQ(Tag(sink.stored[1], DCM_Modality), "CT");
  }
  {  // An unknown kind fails before anything is stored.
    MemorySink sink;
    PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
    ctx.results = {"movie"};
    EXPECT_THROW(RunPipeline(processor, {}, source, sink, ctx, Origin("derived-3")), Error);
    EXPECT_TRUE(sink.stored.empty());
  }
}

TEST(ProcessorRegistry, RefusesATwiceRegisteredNameAndListsTheKnownOnes) {
  ProcessorRegistry registry;
  RegisterBuiltinProcessors(registry);
  EXPECT_THROW(RegisterVolumeStats(registry), Error);
  registry.Add(std::make_unique<ThresholdProcessor>());
  std::vector<std::string> names;
  for (const Processor* p : registry.All()) names.push_back(p->Info().name);
  std::vector<std::string> expected{"volume-stats", "lung-emphysema", "bone-density", "radiomics"};
  if (PROCNODE_HAVE_ITK) expected.push_back("mr-normalize");  // built where ITK is
  expected.push_back("test-threshold");
  EXPECT_EQ(names, expected);
  EXPECT_EQ(registry.Find("lung-segmentation"), nullptr);
  try {
    registry.Get("lung-segmentation");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string known;
    for (const auto& name : expected) known += (known.empty() ? "" : ", ") + name;
    EXPECT_NE(std::string(e.what()).find("known: " + known + ")"), std::string::npos) << e.what();
  }
  // The built-in registry is not touched by another registry's additions.
  EXPECT_EQ(BuiltinProcessors().Find("test-threshold"), nullptr);
}

TEST(Requirements, ComeFromTheProcessorsBytesPerVoxelAndTheInputSeries) {
  StudyAttributes study;
  auto series = [](const std::string& id, const std::string& modality, int rows, int instances, bool ours = false) {
    SeriesAttributes s{.id = id, .attributes = {{0x00080060, modality}, {0x00280010, std::to_string(rows)}, {0x00280011, "512"}},
                       .produced_by_procnode = ours};
    for (int i = 0; i < instances; ++i) s.instance_ids.push_back(id + std::to_string(i));
    return s;
  };
  study.series = {series("scout", "CT", 256, 2), series("chest", "CT", 512, 300), series("mr", "MR", 512, 900),
                  series("report", "DOC", 512, 1000, true)};
  const Processor* lung = BuiltinProcessors().Find("lung-emphysema");
  const uint64_t chest_voxels = 512ull * 512 * 300;
  JobRequirements r = EstimateRequirements({.processor = "lung-emphysema"}, lung, study, "");
  EXPECT_FALSE(r.needs_gpu);
  EXPECT_TRUE(r.prefers_gpu);
  EXPECT_EQ(r.device_memory_bytes, static_cast<uint64_t>(chest_voxels * lung->Info().gpu_bytes_per_voxel))
      << "the largest CT series: the MR is not accepted and procnode's own series are not inputs";
  EXPECT_EQ(r.host_memory_bytes, static_cast<uint64_t>(chest_voxels * lung->Info().host_bytes_per_voxel));
  r = EstimateRequirements({.processor = "lung-emphysema", .device = "cpu"}, lung, study, "scout");
  EXPECT_FALSE(r.prefers_gpu);
  EXPECT_EQ(r.device_memory_bytes, 0u) << "no GPU, no device memory";
  EXPECT_EQ(r.host_memory_bytes, static_cast<uint64_t>(256ull * 512 * 2 * lung->Info().host_bytes_per_voxel));
  r = EstimateRequirements({.processor = "volume-stats", .device = "gpu"}, BuiltinProcessors().Find("volume-stats"), study, "");
  EXPECT_TRUE(r.needs_gpu);
  EXPECT_EQ(r.device_memory_bytes, 512ull * 512 * 900 * 4) << "volume-stats takes any modality: the MR is largest";
  r = EstimateRequirements({.processor = "gone", .device = "gpu"}, nullptr, study, "");
  EXPECT_TRUE(r.needs_gpu);
  EXPECT_EQ(r.host_memory_bytes, 0u);
}

// Issue 20: results that would carry an identity out of an anonymized route are held, and that is
// a policy outcome (invalid input: never retried), not an internal error retried every attempt.
TEST(Pipeline, TheLeakGateHoldsResultsCarryingAnIdentityAsAPolicyRefusal) {
  class Leaky : public Processor {
   public:
    explicit Leaky(std::string leak) : leak_(std::move(leak)) { info_.name = "test-leaky"; }
    const ProcessorInfo& Info() const override { return info_; }
    ProcessorOutput Run(const Volume&, const nlohmann::json&, const ProcessorContext&) const override {
      ProcessorOutput out;
      out.report = {{"Figures", {{"Patient (a processor that should not know)", leak_}}}};
      out.device = "cpu";
      return out;
    }

   private:
    ProcessorInfo info_;
    std::string leak_;
  };
  FolderStudySource source(kChest);
  auto first = ReadDicomBuffer(source.FetchInstance(source.ListSeries("")[0].instance_ids[0]), "ct");
  OFString patient_id;
  first->getDataset()->findAndGetOFString(DCM_PatientID, patient_id);
  ASSERT_FALSE(patient_id.empty());
  const Leaky leaky(patient_id.c_str());
  MemorySink sink;
  DeidentifyOptions anonymize{.project = "leak-test", .secret = "test-secret"};
  PipelineContext ctx{.device = DevicePreference::kCpu, .font_path = PROCNODE_FONT};
  ctx.anonymize = &anonymize;
  try {
    RunPipeline(leaky, {}, source, sink, ctx, Origin("leak"));
    FAIL() << "the leak gate let the identity out";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("leak gate: results held"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(patient_id.c_str()), std::string::npos) << "the message names places, not values";
  }
  EXPECT_TRUE(sink.stored.empty()) << "nothing stored";
}

}  // namespace
}  // namespace procnode
