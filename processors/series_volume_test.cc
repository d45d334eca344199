#include "processors/series_volume.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "processors/folder_source.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

const std::string kData = PROCNODE_SHARED_DATA;

// A StudySource holding exactly the given files as one series (for single-file checks).
class FilesSource : public StudySource {
 public:
  explicit FilesSource(std::vector<std::string> files) : files_(std::move(files)) {}
  std::vector<SeriesRef> ListSeries(const std::string&) override {
    return {SeriesRef{.id = "files", .modality = "", .instance_ids = files_}};
  }
  std::string FetchInstance(const std::string& id) override { return ReadFileBytes(id); }

 private:
  std::vector<std::string> files_;
};

TEST(SeriesVolume, LoadsTheChestCtInHounsfieldUnitsSortedAlongTheNormal) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/lung-kernel");
  const auto series = source.ListSeries("");
  ASSERT_EQ(series.size(), 1u);
  std::size_t progress_calls = 0;
  const auto loaded = LoadSeriesVolume(source, LargestInputSeries(series),
                                       {.progress = [&](std::size_t, std::size_t) { ++progress_calls; }});
  const Volume& v = loaded.volume;
  EXPECT_EQ(v.dims[0], 512u);
  EXPECT_EQ(v.dims[1], 512u);
  EXPECT_EQ(v.dims[2], 64u);
  EXPECT_EQ(progress_calls, 64u);
  EXPECT_NEAR(std::abs(v.spacing[2]), 5.0, 0.01);
  EXPECT_EQ(v.units, "HU");
  EXPECT_EQ(v.voxels.size(), v.VoxelCount());
  const auto [lo, hi] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  EXPECT_LE(*lo, -1000.0f);  // air outside the body
  EXPECT_GE(*hi, 1000.0f);   // bone
  EXPECT_EQ(loaded.sources.size(), 64u);
  EXPECT_FALSE(loaded.study.study_instance_uid.empty());
}

TEST(SeriesVolume, SliceOrderDoesNotDependOnTheOrderInstancesArrive) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/standard-kernel");
  SeriesRef series = LargestInputSeries(source.ListSeries(""));
  const auto sorted = LoadSeriesVolume(source, series);
  std::shuffle(series.instance_ids.begin(), series.instance_ids.end(), std::mt19937(7));
  const auto shuffled = LoadSeriesVolume(source, series);
  EXPECT_EQ(sorted.volume.origin, shuffled.volume.origin);
  EXPECT_TRUE(sorted.volume.voxels == shuffled.volume.voxels);
}

TEST(SeriesVolume, LoadsTheBrainMrWithItsFullDimensions) {
  FolderStudySource source(kData + "/mr-brain-sag-mprage");
  const auto loaded = LoadSeriesVolume(source, LargestInputSeries(source.ListSeries("")));
  EXPECT_EQ(loaded.volume.dims[0] * loaded.volume.dims[1], 256u * 256u);
  EXPECT_EQ(loaded.volume.dims[2], 192u);
  EXPECT_EQ(loaded.volume.units, "");
}

TEST(SeriesVolume, CancellationStopsLoadingWithACancelledError) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/lung-kernel");
  try {
    LoadSeriesVolume(source, LargestInputSeries(source.ListSeries("")), {.cancelled = [] { return true; }});
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
}

// The same image in several transfer syntaxes decodes to the same voxels (DCMTK's RLE, JPEG
// lossless and JPEG-LS decoders, OpenJPEG for JPEG 2000; big endian; implicit VR).
TEST(SeriesVolume, LosslessTransferSyntaxesDecodeToTheSameVoxels) {
  const std::string folder = kData + "/debian-pydicom-test-files/";
  FilesSource reference_source({folder + "MR_small.dcm"});
  const auto reference = LoadSeriesVolume(reference_source, reference_source.ListSeries("")[0]).volume;
  ASSERT_EQ(reference.VoxelCount(), 64u * 64u);
  for (const char* name : {"MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                           "MR_small_expb.dcm", "MR_small_implicit.dcm"}) {
    FilesSource source({folder + name});
    const auto decoded = LoadSeriesVolume(source, source.ListSeries("")[0]).volume;
    EXPECT_TRUE(decoded.voxels == reference.voxels) << name;
  }
  const std::string codecs = kData + "/codecs-pydicom-data/";
  const std::pair<std::string, std::string> lossless_pairs[] = {
      {folder + "MR_small_jp2klossless.dcm", folder + "MR_small.dcm"},
      {codecs + "emri_small_jpeg_2k_lossless.dcm", codecs + "emri_small.dcm"},
      {codecs + "MR2_J2KR.dcm", codecs + "MR2_UNCR.dcm"},
      {codecs + "693_J2KR.dcm", codecs + "693_UNCR.dcm"},
      {codecs + "emri_small_RLE.dcm", codecs + "emri_small.dcm"},
      {codecs + "emri_small_jpeg_ls_lossless.dcm", codecs + "emri_small.dcm"},
  };
  for (const auto& [compressed, plain] : lossless_pairs) {
    FilesSource a({compressed}), b({plain});
    const auto decoded = LoadSeriesVolume(a, a.ListSeries("")[0]).volume;
    const auto expected = LoadSeriesVolume(b, b.ListSeries("")[0]).volume;
    EXPECT_GT(decoded.VoxelCount(), 0u) << compressed;
    EXPECT_TRUE(decoded.voxels == expected.voxels) << compressed << " differs from " << plain;
  }
  FilesSource jpeg({kData + "/codecs-pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm"});
  EXPECT_GT(LoadSeriesVolume(jpeg, jpeg.ListSeries("")[0]).volume.VoxelCount(), 0u);
}

// Every file of the malformed and transfer-syntax corpora either loads or fails with a procnode
// Error whose message names the file; nothing crashes and no other exception escapes.
class CorpusFile : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusFile, LoadsOrFailsWithAMessageNamingTheFile) {
  const std::string path = GetParam();
  FilesSource source({path});
  try {
    const auto loaded = LoadSeriesVolume(source, source.ListSeries("")[0]);
    EXPECT_EQ(loaded.volume.voxels.size(), loaded.volume.VoxelCount());
    EXPECT_GT(loaded.volume.VoxelCount(), 0u);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(e.code(), ErrorCode::kInternal) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(MalformedAndZoo, CorpusFile, ::testing::ValuesIn(testing::CorpusFiles()),
                         [](const auto& info) { return testing::CorpusTestName(info.param, info.index); });

}  // namespace
}  // namespace procnode
