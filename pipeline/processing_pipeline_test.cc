#include "pipeline/processing_pipeline.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "dicom/io.h"
#include "dicom/folder_source.h"

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
  const auto result = RunPipeline("volume-stats", {}, source, sink, ctx, Origin("key-1"));
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
  RunPipeline("volume-stats", {}, source, sink, ctx, Origin("key-1"));
  RunPipeline("volume-stats", {}, source, sink, ctx, Origin("key-1"));
  RunPipeline("volume-stats", {}, source, sink, ctx, Origin("key-2"));
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
    RunPipeline("volume-stats", {}, source, sink, ctx, Origin("k"));
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
  EXPECT_THROW(RunPipeline("volume-stats", {}, source, sink, {.font_path = PROCNODE_FONT}, Origin("k")), Error);
}

}  // namespace
}  // namespace procnode
