// The pipeline's volume stage: NiftiSeriesVolume (the series through the NIfTI converter).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "nifti/series_to_nifti.h"
#include "dicom/folder_source.h"

namespace procnode {
namespace {

const std::string kData = PROCNODE_SHARED_DATA;

TEST(NiftiSeriesVolume, LoadsTheChestCtInHounsfieldUnitsSortedAlongTheNormal) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/lung-kernel");
  const auto series = source.ListSeries("");
  ASSERT_EQ(series.size(), 1u);
  std::size_t progress_calls = 0, last_done = 0, last_total = 0;
  const auto loaded = NiftiSeriesVolume(source, LargestInputSeries(series),
                                       {.progress = [&](std::size_t done, std::size_t total) {
                                         ++progress_calls;
                                         EXPECT_EQ(done, last_done + 1);
                                         last_done = done, last_total = total;
                                       }});
  const Volume& v = loaded.volume;
  EXPECT_EQ(v.dims[0], 512u);
  EXPECT_EQ(v.dims[1], 512u);
  EXPECT_EQ(v.dims[2], 64u);
  EXPECT_EQ(progress_calls, 128u) << "two steps per instance: large images from files are read headers first, pixels later";
  EXPECT_EQ(last_done, last_total);
  EXPECT_NEAR(std::abs(v.spacing[2]), 5.0, 0.01);
  EXPECT_EQ(v.units, "HU");
  EXPECT_EQ(v.voxels.size(), v.VoxelCount());
  const auto [lo, hi] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  EXPECT_LE(*lo, -1000.0f);  // air outside the body
  EXPECT_GE(*hi, 1000.0f);   // bone
  EXPECT_EQ(loaded.sources.size(), 64u);
  EXPECT_FALSE(loaded.study.study_instance_uid.empty());
}

TEST(NiftiSeriesVolume, SliceOrderDoesNotDependOnTheOrderInstancesArrive) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/standard-kernel");
  SeriesRef series = LargestInputSeries(source.ListSeries(""));
  const auto sorted = NiftiSeriesVolume(source, series);
  std::shuffle(series.instance_ids.begin(), series.instance_ids.end(), std::mt19937(7));
  const auto shuffled = NiftiSeriesVolume(source, series);
  EXPECT_EQ(sorted.volume.origin, shuffled.volume.origin);
  EXPECT_TRUE(sorted.volume.voxels == shuffled.volume.voxels);
}

TEST(NiftiSeriesVolume, LoadsTheBrainMrWithItsFullDimensions) {
  FolderStudySource source(kData + "/mr-brain-sag-mprage");
  const auto loaded = NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries("")));
  // 256x256 images, 192 slices; rotated (as dcm2niix does) so the slices are the first axis.
  EXPECT_EQ(loaded.volume.VoxelCount(), 256u * 256u * 192u);
  EXPECT_EQ(loaded.volume.dims[0], 192u);
  EXPECT_EQ(loaded.volume.units, "");
}

TEST(NiftiSeriesVolume, CancellationStopsLoadingWithACancelledError) {
  FolderStudySource source(kData + "/ct-chest-lung-dx-a0001/lung-kernel");
  try {
    NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries("")), {.cancelled = [] { return true; }});
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
}

}  // namespace
}  // namespace procnode
