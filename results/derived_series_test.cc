// The derived image series writer on the shared brain MR: values written back on the source's
// planes, read again, equal the volume's within the rescale step; geometry and references are the
// source's; dciodvfy finds no error.
#include "results/derived_series.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/digest.h"
#include "core/error.h"
#include "dicom/folder_source.h"
#include "dicom/io.h"
#include "nifti/series_to_nifti.h"

namespace procnode {
namespace {

const std::string kData = PROCNODE_SHARED_DATA;

std::string RunCommand(const std::string& command) {
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen((command + " 2>&1").c_str(), "r"), &pclose);
  std::string out;
  std::array<char, 4096> buffer;
  while (pipe && fgets(buffer.data(), buffer.size(), pipe.get())) out += buffer.data();
  return out;
}

std::string Text(DcmDataset& ds, const DcmTagKey& tag) {
  OFString value;
  ds.findAndGetOFStringArray(tag, value);
  return value.c_str();
}

class DerivedSeriesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new FolderStudySource(kData + "/mr-brain-sag-mprage");
    series_ = new SeriesRef(LargestInputSeries(source_->ListSeries("")));
    loaded_ = new SeriesVolume(NiftiSeriesVolume(*source_, *series_));
  }
  static void TearDownTestSuite() {
    delete loaded_;
    delete series_;
    delete source_;
  }
  static DerivedSeriesSpec Spec(double precision) {
    DerivedSeriesSpec spec;
    spec.study = loaded_->study;
    spec.series_instance_uid = DerivedUid("test/derived-series", "1");
    for (std::size_t k = 0; k < loaded_->sources.size(); ++k) {
      spec.sop_instance_uids.push_back(DerivedUid("test/derived/" + std::to_string(k), "1"));
    }
    spec.series_description = "normalized";
    spec.derivation_description = "test: a linear map";
    spec.derivation_codes = {{"113071", "DCM", "Z-Score"}};
    spec.sources = loaded_->sources;
    spec.acquisition = loaded_->acquisition;
    spec.software_version = "procnode test";
    spec.precision = precision;
    return spec;
  }
  static FolderStudySource* source_;
  static SeriesRef* series_;
  static SeriesVolume* loaded_;
};

FolderStudySource* DerivedSeriesTest::source_ = nullptr;
SeriesRef* DerivedSeriesTest::series_ = nullptr;
SeriesVolume* DerivedSeriesTest::loaded_ = nullptr;

TEST_F(DerivedSeriesTest, WritesOneInstancePerSourceWithTheValuesBackOnTheSourcePlanes) {
  const Volume& v = loaded_->volume;
  // A "normalized" image: the MR's values scaled into a few units, kept to a thousandth.
  std::vector<float> values(v.voxels.size());
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = v.voxels[i] * 0.01f - 2.5f;
  const DerivedSeries made = MakeDerivedSeries(Spec(0.001), v, values);
  ASSERT_EQ(made.instances.size(), loaded_->sources.size());
  EXPECT_DOUBLE_EQ(made.rescale_slope, 0.001);

  // Instances: first, middle and last, against their source file pixel by pixel.
  for (const std::size_t k : {std::size_t{0}, made.instances.size() / 2, made.instances.size() - 1}) {
    auto derived = ReadDicomBuffer(made.instances[k], "derived");
    DcmDataset& d = *derived->getDataset();
    const SourceInstance& s = loaded_->sources[k];
    std::unique_ptr<DcmFileFormat> original;
    for (const auto& id : series_->instance_ids) {
      auto candidate = ReadInstance(*source_, id, id);
      if (Text(*candidate->getDataset(), DCM_SOPInstanceUID) == s.sop_instance_uid) {
        original = std::move(candidate);
        break;
      }
    }
    ASSERT_TRUE(original) << "source " << s.sop_instance_uid;
    DcmDataset& o = *original->getDataset();
    EXPECT_EQ(Text(d, DCM_SOPClassUID), UID_MRImageStorage);
    EXPECT_EQ(Text(d, DCM_ImageType), "DERIVED\\SECONDARY\\OTHER");
    EXPECT_EQ(Text(d, DCM_FrameOfReferenceUID), Text(o, DCM_FrameOfReferenceUID));
    EXPECT_EQ(Text(d, DCM_StudyInstanceUID), Text(o, DCM_StudyInstanceUID));
    EXPECT_EQ(Text(d, DCM_ScanningSequence), Text(o, DCM_ScanningSequence));
    EXPECT_EQ(Text(d, DCM_EchoTime), Text(o, DCM_EchoTime));
    EXPECT_EQ(Text(d, DCM_Manufacturer), "procnode");
    for (const DcmTagKey& tag : {DCM_ImagePositionPatient, DCM_ImageOrientationPatient, DCM_PixelSpacing}) {
      OFString a, b;
      for (int i = 0; i < (tag == DCM_ImageOrientationPatient ? 6 : tag == DCM_PixelSpacing ? 2 : 3); ++i) {
        Float64 x = 0, y = 0;
        d.findAndGetFloat64(tag, x, i);
        o.findAndGetFloat64(tag, y, i);
        EXPECT_NEAR(x, y, 1e-4) << DcmTag(tag).getTagName() << " " << i;
      }
    }
    DcmItem* reference = nullptr;
    ASSERT_TRUE(d.findAndGetSequenceItem(DCM_SourceImageSequence, reference, 0).good());
    OFString referenced;
    reference->findAndGetOFString(DCM_ReferencedSOPInstanceUID, referenced);
    EXPECT_EQ(referenced.c_str(), s.sop_instance_uid);

    Float64 slope = 0, intercept = 0, source_slope = 1, source_intercept = 0;
    ASSERT_TRUE(d.findAndGetFloat64(DCM_RescaleSlope, slope).good());
    ASSERT_TRUE(d.findAndGetFloat64(DCM_RescaleIntercept, intercept).good());
    // The source's own rescale where it has one (DCMTK zeroes the value when the attribute is absent).
    if (o.findAndGetFloat64(DCM_RescaleSlope, source_slope).bad()) source_slope = 1;
    if (o.findAndGetFloat64(DCM_RescaleIntercept, source_intercept).bad()) source_intercept = 0;
    const Uint16* stored = nullptr;
    const Uint16* source_pixels = nullptr;
    unsigned long count = 0, source_count = 0;
    ASSERT_TRUE(d.findAndGetUint16Array(DCM_PixelData, stored, &count).good());
    ASSERT_TRUE(o.findAndGetUint16Array(DCM_PixelData, source_pixels, &source_count).good());
    ASSERT_EQ(count, source_count);
    Uint16 representation = 0;
    o.findAndGetUint16(DCM_PixelRepresentation, representation);
    double worst = 0;
    for (unsigned long i = 0; i < count; ++i) {
      const double written = static_cast<Sint16>(stored[i]) * slope + intercept;
      const double raw = representation ? static_cast<Sint16>(source_pixels[i]) : source_pixels[i];
      const double expected = static_cast<float>(raw * source_slope + source_intercept) * 0.01f - 2.5f;
      worst = std::max(worst, std::abs(written - expected));
    }
    EXPECT_LE(worst, slope / 2 + 1e-6) << "instance " << k;
  }
}

TEST_F(DerivedSeriesTest, PassesDciodvfyWithoutErrors) {
  const Volume& v = loaded_->volume;
  const DerivedSeries made = MakeDerivedSeries(Spec(0), v, v.voxels);
  const auto path = std::filesystem::temp_directory_path() / "procnode-derived-series.dcm";
  std::ofstream(path, std::ios::binary) << made.instances[made.instances.size() / 2];
  const std::string report = RunCommand("dciodvfy -new " + path.string());
  EXPECT_EQ(report.find("Error"), std::string::npos) << report;
  EXPECT_NE(report.find("MRImage"), std::string::npos) << report;
  std::filesystem::remove(path);
}

TEST_F(DerivedSeriesTest, ARangeWiderThanSixteenBitsAtThePrecisionGetsACoarserSlope) {
  const Volume& v = loaded_->volume;
  std::vector<float> values(v.voxels.size());
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = v.voxels[i] * 100.0f;
  const DerivedSeries made = MakeDerivedSeries(Spec(0.001), v, values);
  EXPECT_GT(made.rescale_slope, 0.001);
}

TEST_F(DerivedSeriesTest, MultiFrameAndNonImageSourcesAreRefused) {
  const Volume& v = loaded_->volume;
  DerivedSeriesSpec spec = Spec(0);
  spec.sources[0].frames = 4;
  try {
    MakeDerivedSeries(spec, v, v.voxels);
    FAIL() << "a multi-frame source was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
  spec = Spec(0);
  spec.sources[0].sop_class_uid = UID_SecondaryCaptureImageStorage;
  EXPECT_THROW(MakeDerivedSeries(spec, v, v.voxels), Error);
  EXPECT_THROW(MakeDerivedSeries(Spec(0), v, std::vector<float>(10)), Error);
}

}  // namespace
}  // namespace procnode
