#include "processors/external/tool_outputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "nifti/nifti1.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Volume Input() {
  Volume v;
  v.dims = {4, 3, 2};
  v.spacing = {0.5, 0.5, 2};
  v.origin = {10, -20, 30};
  v.row_direction = {1, 0, 0};
  v.column_direction = {0, 1, 0};
  v.slice_direction = {0, 0, 1};
  v.modality = "CT";
  v.voxels.assign(24, 0);
  return v;
}

NiftiImage Image(const Volume& grid, int16_t datatype, const std::vector<float>& values) {
  NiftiImage image;
  image.dims = {static_cast<int64_t>(grid.dims[0]), static_cast<int64_t>(grid.dims[1]), static_cast<int64_t>(grid.dims[2]), 1, 1};
  image.pixdim = {grid.spacing[0], grid.spacing[1], grid.spacing[2], 0};
  image.srow = VolumeAffine(grid);
  image.datatype = datatype;
  if (datatype == kDtUint8) {
    for (float v : values) image.voxels.push_back(static_cast<char>(static_cast<uint8_t>(v)));
  } else {
    image.voxels.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  return image;
}

class ToolOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() / ("procnode-outputs-test-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(folder_);
    manifest_.name = "demo";
    manifest_.version = "1";
    manifest_.labels = manifest_.measurements = manifest_.report = true;
    manifest_.derived = {"derived.nii.gz"};
    std::vector<float> labels(24, 0);
    labels[5] = labels[6] = 1;
    labels[20] = 2;
    WriteNiftiFile((folder_ / "labels.nii.gz").string(), Image(Input(), kDtUint8, labels), true);
    Write("labels.json", {{"1", "Lesion"},
                          {"2", {{"name", "Liver"}, {"code", {{"value", "10200004"}, {"scheme", "SCT"}, {"meaning", "Liver"}}},
                                 {"colour", {1, 2, 3}}}}});
    Write("measurements.json", {{"measurements", {{{"name", "Volume"}, {"value", 1.5}, {"unit", "mL"}, {"label", 1}},
                                                  {{"name", "Mean"}, {"value", -3.25}, {"unit", "[hnsf'U]"}, {"label", 2},
                                                   {"code", {{"value", "112031"}, {"scheme", "DCM"}, {"meaning", "Attenuation Coefficient"}}}},
                                                  {{"name", "Score"}, {"value", 7}, {"unit", "1"}}}}});
    Write("report.json", {{"sections", {{{"heading", "Findings"}, {"paragraph", "Two labels."},
                                         {"rows", json::array({json::array({"Lesions", "1"})})},
                                         {"table", {{"header", {"a", "b"}}, {"rows", json::array({json::array({"1", "2"})})}}}}}}});
    std::vector<float> derived(24, 0.25f);
    WriteNiftiFile((folder_ / "derived.nii.gz").string(), Image(Input(), kDtFloat32, derived), true);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(folder_, ec);
  }
  void Write(const std::string& name, const json& value) { std::ofstream(folder_ / name) << value.dump(); }
  void WriteText(const std::string& name, const std::string& text) { std::ofstream(folder_ / name) << text; }
  std::string Refusal() {
    try {
      ReadToolOutputs(folder_.string(), manifest_, Input());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kProcessorFailed) << e.what();
      return e.what();
    }
    return "";
  }
  fs::path folder_;
  ToolManifest manifest_;
};

TEST_F(ToolOutputsTest, TheContractBecomesSegmentsMeasurementsReportAndDerivedImages) {
  WriteText("stray.txt", "x");
  const ProcessorOutput out = ReadToolOutputs(folder_.string(), manifest_, Input());
  ASSERT_EQ(out.labels.size(), 24u);
  EXPECT_EQ(out.labels[5], 1);
  EXPECT_EQ(out.labels[20], 2);
  ASSERT_EQ(out.segments.size(), 2u);
  EXPECT_EQ(out.segments[0].label, "Lesion");
  EXPECT_EQ(out.segments[0].type.value, "85756007");  // Tissue where the tool gave no code
  EXPECT_EQ(out.segments[1].type.meaning, "Liver");
  EXPECT_EQ(out.segments[1].rgb, (std::array<int, 3>{1, 2, 3}));
  ASSERT_EQ(out.segments[0].measurements.size(), 1u);
  EXPECT_EQ(out.segments[0].measurements[0].value, 1.5);
  EXPECT_EQ(out.segments[0].measurements[0].unit.value, "mL");
  EXPECT_EQ(out.segments[0].measurements[0].concept_name.scheme, "99PROCNODE");
  EXPECT_EQ(out.segments[1].measurements[0].concept_name.value, "112031");
  EXPECT_EQ(out.measurements["global"]["Score"]["value"], 7);
  EXPECT_EQ(out.measurements["labels"]["Liver"]["Mean"]["value"], -3.25);
  ASSERT_EQ(out.report.size(), 1u);
  EXPECT_EQ(out.report[0].table.rows[0][1], "2");
  ASSERT_EQ(out.files.size(), 1u);
  EXPECT_EQ(out.files[0].name, "derived.nii.gz");
  ASSERT_EQ(out.derived.size(), 1u);  // for the derived-series writer, on the input's grid
  EXPECT_EQ(out.derived[0].name, "derived");
  EXPECT_EQ(out.derived[0].voxels, std::vector<float>(24, 0.25f));
  const NiftiImage rewritten = ParseNiftiBytes(out.files[0].bytes, "derived");
  EXPECT_EQ(rewritten.descrip, "procnode derived: demo");
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].find("undeclared output left out: stray.txt"), std::string::npos);
}

TEST_F(ToolOutputsTest, ALabelNotDeclaredIsRefused) {
  Write("labels.json", {{"1", "Lesion"}});
  EXPECT_NE(Refusal().find("tool demo: labels.nii.gz: label value 2 is not declared in labels.json"), std::string::npos);
}

TEST_F(ToolOutputsTest, LabelsOnAnotherGridAreRefused) {
  Volume other = Input();
  other.dims = {4, 3, 3};
  WriteNiftiFile((folder_ / "labels.nii.gz").string(), Image(other, kDtUint8, std::vector<float>(36, 0)), true);
  EXPECT_NE(Refusal().find("labels.nii.gz: grid 4x3x3 is not the input's 4x3x2"), std::string::npos);
  Volume shifted = Input();
  shifted.origin[2] += 1;
  WriteNiftiFile((folder_ / "labels.nii.gz").string(), Image(shifted, kDtUint8, std::vector<float>(24, 0)), true);
  EXPECT_NE(Refusal().find("labels.nii.gz: affine differs from the input's (row 2, column 3"), std::string::npos);
}

TEST_F(ToolOutputsTest, NotANumberIsRefusedInImagesAndLabels) {
  std::vector<float> values(24, 1.0f);
  values[7] = std::nanf("");
  WriteNiftiFile((folder_ / "derived.nii.gz").string(), Image(Input(), kDtFloat32, values), true);
  EXPECT_NE(Refusal().find("derived.nii.gz: voxel 7 is not a finite number"), std::string::npos);
  WriteNiftiFile((folder_ / "labels.nii.gz").string(), Image(Input(), kDtFloat32, values), true);
  EXPECT_NE(Refusal().find("labels.nii.gz: voxel 7 holds NaN"), std::string::npos);
}

TEST_F(ToolOutputsTest, MalformedJsonOutputsAreRefusedWithTheirPlace) {
  WriteText("measurements.json", "{\"measurements\": [{\"name\": \"x\", \"value\": NaN, \"unit\": \"1\"}]}");
  EXPECT_NE(Refusal().find("measurements.json: not JSON"), std::string::npos);
  Write("measurements.json", {{"measurements", {{{"name", "x"}, {"value", "7"}, {"unit", "1"}}}}});
  EXPECT_NE(Refusal().find("measurements[0].value: must be a finite number"), std::string::npos);
  Write("measurements.json", {{"measurements", {{{"name", "x"}, {"value", 7}, {"unit", "1"}, {"label", 9}}}}});
  EXPECT_NE(Refusal().find("measurements[0].label: 9 is not a label of labels.json"), std::string::npos);
  Write("measurements.json", {{"measurements", json::array()}});
  Write("labels.json", {{"1", {{"name", "x"}, {"code", {{"value", "1"}, {"scheme", "MYCODES"}, {"meaning", "x"}}}}}, {"2", "y"}});
  EXPECT_NE(Refusal().find("labels.json: 1.code.scheme: must be SCT, DCM, LN or 99PROCNODE"), std::string::npos);
  Write("labels.json", {{"1", "x"}, {"2", "y"}});
  Write("report.json", {{"sections", {{{"heading", "h"}, {"rows", {{"only one"}}}}}}});
  EXPECT_NE(Refusal().find("report.json: sections[0].rows[0]: must be [label, value]"), std::string::npos);
}

TEST_F(ToolOutputsTest, ADeclaredOutputThatIsMissingIsRefused) {
  fs::remove(folder_ / "report.json");
  EXPECT_NE(Refusal().find("tool demo: report.json: missing (the manifest declares it)"), std::string::npos);
}

TEST_F(ToolOutputsTest, ALinkInsteadOfAFileIsRefused) {
  fs::remove(folder_ / "report.json");
  fs::create_symlink("/etc/passwd", folder_ / "report.json");
  EXPECT_NE(Refusal().find("report.json: is a symbolic link"), std::string::npos);
}

TEST_F(ToolOutputsTest, AGzipBombIsRefusedBeforeItFillsMemory) {
  // 64 MiB of zeros behind a valid header: far more than the 4x3x2 input's labels can need.
  NiftiImage bomb = Image(Input(), kDtUint8, std::vector<float>(24, 0));
  bomb.voxels.resize(64 << 20, '\0');
  WriteNiftiFile((folder_ / "labels.nii.gz").string(), bomb, true);
  EXPECT_LT(fs::file_size(folder_ / "labels.nii.gz"), 1u << 20);
  EXPECT_NE(Refusal().find("labels.nii.gz: inflates to more than"), std::string::npos);
}

}  // namespace
}  // namespace procnode
