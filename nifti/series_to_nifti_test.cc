#include "nifti/series_to_nifti.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "dicom/folder_source.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

const std::string kData = PROCNODE_SHARED_DATA;

std::vector<NiftiConversion> ConvertParts(const std::string& folder) {
  FolderStudySource source(folder);
  const auto series = source.ListSeries("");
  EXPECT_EQ(series.size(), 1u) << folder;
  return ConvertSeriesToNifti(source, series.at(0));
}

NiftiConversion ConvertFolder(const std::string& folder) {
  auto parts = ConvertParts(folder);
  EXPECT_EQ(parts.size(), 1u) << folder;
  return std::move(parts.at(0));
}

TEST(SeriesToNifti, ChestCtKeepsStoredValuesWithTheRescaleInTheHeader) {
  const auto c = ConvertFolder(kData + "/ct-chest-lung-dx-a0001/lung-kernel");
  EXPECT_EQ(c.image.dims[0], 512);
  EXPECT_EQ(c.image.dims[2], 64);
  EXPECT_EQ(c.image.dimensions, 3);
  EXPECT_EQ(c.image.datatype, kDtInt16);  // 12-bit unsigned fits int16, as dcm2niix writes it
  EXPECT_EQ(c.image.scl_inter, -1024);
  EXPECT_EQ(c.image.voxels.size(), 512u * 512u * 64u * 2u);
  EXPECT_NEAR(c.image.pixdim[2], 5.0, 1e-6);
  EXPECT_GT(c.image.srow[2][2], 0) << "slices ascend along the normal";
  EXPECT_EQ(c.sidecar["Modality"], "CT");
  EXPECT_EQ(c.sidecar["ConversionSoftware"], "procnode");
  EXPECT_EQ(NiftiFileStem(c), "2_5mm");
}

TEST(SeriesToNifti, TheSidecarCarriesNoIdentity) {
  const auto c = ConvertFolder(kData + "/mr-brain-sag-mprage");
  for (const char* key : {"PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "StationName",
                          "DeviceSerialNumber", "AcquisitionTime", "AcquisitionDateTime", "ImageComments",
                          "InstitutionAddress", "StudyInstanceUID", "SeriesInstanceUID"}) {
    EXPECT_FALSE(c.sidecar.contains(key)) << key;
  }
  EXPECT_EQ(c.sidecar["MRAcquisitionType"], "3D");
  EXPECT_EQ(c.image.dims[0], 192) << "3D acquisitions are rotated to the nearest orthogonal orientation";
}

TEST(SeriesToNifti, ATiltedCtWithChangingSpacingIsSplitIntoEvenPartsAndTiltCorrected) {
  const auto parts = ConvertParts(kData + "/dcm_qa_ct/In/GE");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].suffix, "_part1");
  EXPECT_EQ(parts[1].suffix, "_part2");
  for (const auto& part : parts) {
    EXPECT_EQ(part.image.dims[2], 14);
    EXPECT_GT(part.image.dims[1], 512) << "the grid grows so the shifted slices are not cut";
    ASSERT_EQ(part.warnings.size(), 2u);
    EXPECT_NE(part.warnings[1].find("gantry tilt of 18.5 degrees"), std::string::npos) << part.warnings[1];
    EXPECT_TRUE(part.sidecar.contains("ConversionWarnings"));
    // The affine is orthogonal again: slice axis perpendicular to the column axis.
    double dot = 0;
    for (int r = 0; r < 3; ++r) dot += part.image.srow[r][1] * part.image.srow[r][2];
    EXPECT_NEAR(dot, 0, 1e-6);
  }
  EXPECT_NEAR(parts[0].image.pixdim[2], 4.0, 0.01);
  EXPECT_NEAR(parts[1].image.pixdim[2], 7.0, 0.01);
}

TEST(SeriesToNifti, SiemensMosaicsAreSplitIntoSlicesWithTimingAndPhaseDirection) {
  const auto c = ConvertFolder(kData + "/dcm_qa_nih/In/20180918Si/mr_0003");
  EXPECT_EQ(c.image.dimensions, 4);
  EXPECT_EQ(c.image.dims[2], 5) << "slices from the mosaic tiles";
  EXPECT_EQ(c.sidecar["PhaseEncodingDirection"], "j-");
  ASSERT_TRUE(c.sidecar.contains("SliceTiming"));
  EXPECT_EQ(c.sidecar["SliceTiming"].size(), 5u);
  EXPECT_EQ(c.image.slice_code, 3) << "0, 1450, 482.5, 1932.5, 967.5 ms: interleaved from slice 0 (ALT_INC)";
}

TEST(SeriesToNifti, UihGridsAreSplitIntoSlicesWithTheirOwnPositionsTimesAndGradients) {
  const auto c = ConvertFolder(kData + "/dcm_qa_uih/In/DTI_134434/dti_tra_dir16_AP_SaveBySlc__140028");
  EXPECT_EQ(c.image.dims[0], 64);
  EXPECT_EQ(c.image.dims[1], 64);
  EXPECT_EQ(c.image.dims[2], 20) << "a 320x256 grid of 5 x 4 tiles";
  EXPECT_EQ(c.image.dims[3], 17);
  EXPECT_EQ(c.image.datatype, kDtUint16) << "16 bits stored: dcm2niix keeps uint16";
  ASSERT_TRUE(c.sidecar.contains("SliceTiming"));
  EXPECT_EQ(c.sidecar["SliceTiming"].size(), 20u);
  ASSERT_TRUE(c.gradients.has_value());
  ASSERT_EQ(c.gradients->bvals.size(), 17u);
  EXPECT_NEAR(c.gradients->bvals[0], 1.25194, 1e-4) << "UIH's effective b of its b=0 volume";
  EXPECT_NEAR(c.gradients->bvals[1], 928.289, 1e-3) << "(0065,1009), not the nominal 1000";
  // (0065,1037) of volume 2 is 0.5541, -0.2417, -0.7966: y changes sign with the row flip.
  EXPECT_NEAR(c.gradients->bvecs[1][0], 0.554117, 1e-6);
  EXPECT_NEAR(c.gradients->bvecs[1][1], 0.241679, 1e-6);
  EXPECT_NEAR(c.gradients->bvecs[1][2], -0.796584, 1e-6);
  EXPECT_EQ(BvalText(*c.gradients).substr(0, 16), "1.25194 928.289 ");
  const std::string bvec = BvecText(*c.gradients);
  EXPECT_EQ(std::count(bvec.begin(), bvec.end(), '\n'), 3);
  EXPECT_EQ(bvec.substr(0, 11), "0 0.554117 ");
}

TEST(SeriesToNifti, AUihGridWithoutItsSlicePositionsIsRefusedNamingTheFile) {
  const std::string folder = (std::filesystem::temp_directory_path() / "procnode-uih-broken").string();
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  DcmFileFormat file;
  const std::string source = kData + "/dcm_qa_uih/In/DTI_134434/dti_tra_dir16_AP_SaveBySlc__140028/00000001.dcm";
  ASSERT_TRUE(file.loadFile(source.c_str()).good());
  DcmItem* item = nullptr;
  ASSERT_TRUE(file.getDataset()->findAndGetSequenceItem(DcmTagKey(0x0065, 0x1051), item, 19).good());
  item->findAndDeleteElement(DCM_ImagePositionPatient);
  ASSERT_TRUE(file.saveFile((folder + "/grid.dcm").c_str(), EXS_LittleEndianExplicit).good());
  try {
    ConvertFolder(folder);
    FAIL() << "converted a grid without positions";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("grid slice 20 has no ImagePositionPatient"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(folder);
}

TEST(SeriesToNifti, ASeriesWithoutDiffusionWeightingHasNoGradientTable) {
  EXPECT_FALSE(ConvertFolder(kData + "/dcm_qa_nih/In/20180918Si/mr_0003").gradients.has_value());
  EXPECT_FALSE(ConvertFolder(kData + "/ct-chest-lung-dx-a0001/lung-kernel").gradients.has_value());
}

TEST(SeriesToNifti, EnhancedPhilipsB0MapSplitsIntoMagnitudeAndFieldMapWithPreciseScaling) {
  const auto parts = ConvertParts(kData + "/dcm_qa_enh/In/Philips");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].suffix, "_e1");
  EXPECT_EQ(parts[1].suffix, "_e2_fieldmaphz");
  EXPECT_EQ(parts[0].image.dims[2], 32);
  EXPECT_NEAR(parts[0].image.scl_slope, 1 / 8.448640073766e-06, 1e-3) << "1 / MR Scale Slope (2005,100E)";
  EXPECT_NEAR(parts[1].image.scl_inter, -500, 1e-3);
  EXPECT_NEAR(parts[0].sidecar["EchoTime"].get<double>(), 0.00152, 1e-9);
}

// A folder's series, read only through FetchInstance and not cheap to read again (as over a
// network): converted in one pass, every image decoded at once.
class BytesOnly : public StudySource {
 public:
  explicit BytesOnly(FolderStudySource& folder) : folder_(folder) {}
  std::vector<SeriesRef> ListSeries(const std::string& id) override { return folder_.ListSeries(id); }
  std::string FetchInstance(const std::string& id) override { return folder_.FetchInstance(id); }

 private:
  FolderStudySource& folder_;
};

void ExpectSameImage(const NiftiImage& a, const NiftiImage& b) {
  EXPECT_EQ(a.dims, b.dims);
  EXPECT_EQ(a.datatype, b.datatype);
  EXPECT_EQ(a.srow, b.srow);
  EXPECT_EQ(a.pixdim, b.pixdim);
  EXPECT_TRUE(a.voxels == b.voxels) << "voxels differ";
}

// The folder's one series converted in two passes (from its files: `callbacks` go to this one)
// and in one (BytesOnly).
struct BothWays {
  std::vector<NiftiConversion> two, one;
};
BothWays ConvertBothWays(const std::string& dir, const LoadCallbacks& callbacks = {}) {
  FolderStudySource folder(dir);
  BytesOnly memory(folder);
  return {ConvertSeriesToNifti(folder, folder.ListSeries("")[0], callbacks),
          ConvertSeriesToNifti(memory, memory.ListSeries("")[0])};
}

// The first `count` images of the brain MR (a sagittal 3D acquisition) copied to `dir`, with
// `edit` applied to each dataset.
std::vector<std::string> CopyMr(const std::filesystem::path& dir, std::size_t count,
                                const std::function<void(DcmDataset&, std::size_t)>& edit) {
  std::vector<std::string> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(kData + "/mr-brain-sag-mprage")) {
    if (entry.path().filename() != "LICENSE") inputs.push_back(entry.path().string());
  }
  std::sort(inputs.begin(), inputs.end());
  std::filesystem::create_directories(dir);
  std::vector<std::string> written;
  for (std::size_t i = 0; i < count; ++i) {
    DcmFileFormat file;
    EXPECT_TRUE(file.loadFile(inputs.at(i).c_str()).good());
    file.loadAllDataIntoMemory();
    edit(*file.getDataset(), i);
    written.push_back((dir / ("im" + std::to_string(i) + ".dcm")).string());
    EXPECT_TRUE(file.saveFile(written.back().c_str(), EXS_LittleEndianExplicit).good());
  }
  return written;
}

// From files, a series is sorted on headers alone and its pixels are then read straight into
// their place (and rotation) in the output; from a source not cheap to read twice, every image is
// decoded at once, assembled and rotated afterwards. Both must give the same images.
class TwoPassConversion : public ::testing::TestWithParam<std::string> {};

TEST_P(TwoPassConversion, EqualsTheOnePassConversion) {
  const auto [two, one] = ConvertBothWays(kData + "/" + GetParam());
  ASSERT_EQ(two.size(), one.size());
  for (std::size_t i = 0; i < two.size(); ++i) {
    SCOPED_TRACE("part " + std::to_string(i + 1));
    ExpectSameImage(two[i].image, one[i].image);
    EXPECT_EQ(two[i].warnings, one[i].warnings);
    EXPECT_EQ(two[i].sidecar, one[i].sidecar);
  }
}

// From files, the 3D acquisition and the series of large images (the CT, the tilted GE CT) are read
// in two passes, the pixels alone at the place the scan found; the others are guards.
INSTANTIATE_TEST_SUITE_P(Series, TwoPassConversion,
                         ::testing::Values("mr-brain-sag-mprage",                 // 3D, rotated
                                           "ct-chest-lung-dx-a0001/lung-kernel",  // axial, as acquired
                                           "dcm_qa_nih/In/20180918GE/mr_0004",    // 4D, one file per slice
                                           "dcm_qa_ct/In/GE",                     // tilted, uneven: split
                                           "dcm_qa_nih/In/20180918Si/mr_0003"),   // mosaic
                         [](const auto& info) { return "series" + std::to_string(info.index); });

TEST(SeriesToNifti, AReadTwice3dSeriesKeepsUnsigned16BitWhenAValueNeedsIt) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "mr-uint16";
  std::filesystem::remove_all(dir);
  CopyMr(dir, 6, [](DcmDataset& ds, std::size_t i) {
    ds.putAndInsertUint16(DCM_BitsStored, 16);
    ds.putAndInsertUint16(DCM_HighBit, 15);
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
    if (i == 3) {
      const Uint16* words = nullptr;
      unsigned long count = 0;
      ASSERT_TRUE(ds.findAndGetUint16Array(DCM_PixelData, words, &count).good());
      std::vector<Uint16> edited(words, words + count);
      edited[1000] = 40000;
      ds.putAndInsertUint16Array(DCM_PixelData, edited.data(), count);
    }
  });
  std::vector<std::pair<std::size_t, std::size_t>> steps;
  const auto [two, one] = ConvertBothWays(
      dir.string(), {.progress = [&](std::size_t done, std::size_t total) { steps.emplace_back(done, total); }});
  ASSERT_EQ(steps.size(), 12u) << "headers, then pixels: two steps per instance";
  EXPECT_EQ(steps.back(), std::make_pair(std::size_t{12}, std::size_t{12}));
  ASSERT_EQ(two.size(), 1u);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(two[0].image.datatype, kDtUint16) << "40000 does not fit int16";
  EXPECT_EQ(two[0].image.dims[0], 6) << "rotated";
  ExpectSameImage(two[0].image, one[0].image);
  const auto* voxels = reinterpret_cast<const uint16_t*>(two[0].image.voxels.data());
  EXPECT_EQ(*std::max_element(voxels, voxels + two[0].image.voxels.size() / 2), 40000);
}

// Brain MR images given orientation `iop` (positions 1.2 mm apart along its normal), with `edit`
// applied to each dataset too.
std::string CopyOriented(const std::string& name, const std::array<double, 6>& iop,
                         const std::function<void(DcmDataset&, std::size_t)>& edit) {
  const std::array<double, 3> row{iop[0], iop[1], iop[2]}, column{iop[3], iop[4], iop[5]};
  const std::array<double, 3> normal{row[1] * column[2] - row[2] * column[1], row[2] * column[0] - row[0] * column[2],
                                     row[0] * column[1] - row[1] * column[0]};
  const auto dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  CopyMr(dir, 5, [&](DcmDataset& ds, std::size_t i) {
    std::ostringstream orientation, position;
    orientation << iop[0] << '\\' << iop[1] << '\\' << iop[2] << '\\' << iop[3] << '\\' << iop[4] << '\\' << iop[5];
    position << 10 + 1.2 * i * normal[0] << '\\' << -20 + 1.2 * i * normal[1] << '\\' << 30 + 1.2 * i * normal[2];
    ds.putAndInsertString(DCM_ImageOrientationPatient, orientation.str().c_str());
    ds.putAndInsertString(DCM_ImagePositionPatient, position.str().c_str());
    edit(ds, i);
  });
  return dir.string();
}

// Every voxel of `rotated` holds what `acquired` holds at the same world position (each image's
// own affine): the rotation moved voxels, never values.
void ExpectSameValuesAtTheSameWorldPositions(const NiftiImage& rotated, const NiftiImage& acquired) {
  ASSERT_EQ(rotated.datatype, acquired.datatype);
  ASSERT_EQ(rotated.voxels.size(), acquired.voxels.size());
  const std::size_t width = static_cast<std::size_t>(NiftiBitsPerVoxel(rotated.datatype) / 8);
  // The acquired affine's 3x3 part, inverted (adjugate over determinant).
  const auto& m = acquired.srow;
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  ASSERT_GT(std::abs(det), 1e-9);
  const double inv[3][3] = {
      {(m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det, (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det, (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det},
      {(m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det, (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det, (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det},
      {(m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det, (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det, (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det}};
  std::size_t differing = 0;
  for (int64_t k = 0; k < rotated.dims[2]; ++k) {
    for (int64_t j = 0; j < rotated.dims[1]; ++j) {
      for (int64_t i = 0; i < rotated.dims[0]; ++i) {
        double world[3];
        for (int r = 0; r < 3; ++r) {
          world[r] = rotated.srow[r][0] * i + rotated.srow[r][1] * j + rotated.srow[r][2] * k + rotated.srow[r][3] - m[r][3];
        }
        int64_t index[3];
        for (int a = 0; a < 3; ++a) index[a] = std::llround(inv[a][0] * world[0] + inv[a][1] * world[1] + inv[a][2] * world[2]);
        ASSERT_TRUE(index[0] >= 0 && index[0] < acquired.dims[0] && index[1] >= 0 && index[1] < acquired.dims[1] &&
                    index[2] >= 0 && index[2] < acquired.dims[2])
            << "voxel " << i << "," << j << "," << k << " lies outside the acquired grid";
        const std::size_t from = static_cast<std::size_t>((index[2] * acquired.dims[1] + index[1]) * acquired.dims[0] + index[0]);
        const std::size_t to = static_cast<std::size_t>((k * rotated.dims[1] + j) * rotated.dims[0] + i);
        if (std::memcmp(rotated.voxels.data() + to * width, acquired.voxels.data() + from * width, width) != 0) ++differing;
      }
    }
  }
  EXPECT_EQ(differing, 0u);
}

// Every way a 3D acquisition can lie against the output axes: a few brain MR images given another
// orientation (and positions along its normal). Converted in two passes and in one, they give the
// same image; and every voxel of the rotated image holds what the same images, labelled 2D (so
// not rotated), hold at that world position. The last case also has a rescale that varies from
// slice to slice (float output).
TEST(SeriesToNifti, EveryOrientationOfA3dAcquisitionGivesTheSameImageInOneOrTwoPasses) {
  const std::vector<std::pair<std::string, std::array<double, 6>>> orientations = {
      {"axial", {1, 0, 0, 0, 1, 0}},
      {"axial, rows along y", {0, 1, 0, 1, 0, 0}},
      {"axial, x reversed", {-1, 0, 0, 0, 1, 0}},
      {"coronal", {1, 0, 0, 0, 0, -1}},
      {"sagittal", {0, 1, 0, 0, 0, -1}},
      {"oblique", {0.94, 0.34202, 0, 0, 0, -1}},
      {"coronal, rescale varying", {1, 0, 0, 0, 0, -1}},
  };
  for (const auto& [label, iop] : orientations) {
    SCOPED_TRACE(label);
    const bool varying = label.find("varying") != std::string::npos;
    auto rescale = [&](DcmDataset& ds, std::size_t i) {
      if (varying) ds.putAndInsertString(DCM_RescaleSlope, std::to_string(1 + 0.5 * static_cast<double>(i)).c_str());
    };
    const auto [two, one] = ConvertBothWays(CopyOriented("mr-orientation", iop, rescale));
    ASSERT_EQ(two.size(), 1u);
    ASSERT_EQ(one.size(), 1u);
    ExpectSameImage(two[0].image, one[0].image);
    EXPECT_EQ(two[0].image.datatype, varying ? kDtFloat32 : kDtInt16);

    const auto acquired = ConvertBothWays(CopyOriented("mr-orientation-2d", iop, [&](DcmDataset& ds, std::size_t i) {
                            ds.putAndInsertString(DCM_MRAcquisitionType, "2D");
                            rescale(ds, i);
                          })).two;
    ASSERT_EQ(acquired.size(), 1u);
    ExpectSameValuesAtTheSameWorldPositions(two[0].image, acquired[0].image);
  }
}

TEST(SeriesToNifti, A4dSeriesOfLargeImagesGivesTheSameImageInOneOrTwoPasses) {
  // Six brain MR images (3D acquisition: read in two passes) as 3 axial positions x 2 time points.
  const auto dir = std::filesystem::path(::testing::TempDir()) / "mr-4d";
  std::filesystem::remove_all(dir);
  CopyMr(dir, 6, [](DcmDataset& ds, std::size_t i) {
    ds.putAndInsertString(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    ds.putAndInsertString(DCM_ImagePositionPatient, ("0\\0\\" + std::to_string(4 * (i % 3))).c_str());
    ds.putAndInsertString(DCM_InstanceNumber, std::to_string(i + 1).c_str());
  });
  const auto [two, one] = ConvertBothWays(dir.string());
  ASSERT_EQ(two.size(), 1u);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(two[0].image.dims[2], 3);
  EXPECT_EQ(two[0].image.dims[3], 2);
  ExpectSameImage(two[0].image, one[0].image);
}

TEST(SeriesToNifti, AFileReplacedBetweenTheTwoReadsFailsNamingIt) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "mr-replaced";
  std::filesystem::remove_all(dir);
  const auto files = CopyMr(dir, 8, [](DcmDataset&, std::size_t) {});
  FolderStudySource folder(dir.string());
  LoadCallbacks callbacks;
  callbacks.progress = [&](std::size_t done, std::size_t) {
    // Every header has been read: another image now takes the place of the fifth.
    if (done == files.size()) std::filesystem::copy_file(files[2], files[4], std::filesystem::copy_options::overwrite_existing);
  };
  try {
    ConvertSeriesToNifti(folder, folder.ListSeries("")[0], callbacks);
    FAIL() << "a replaced file was converted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(files[4]), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("changed while"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  }
}

TEST(SeriesToNifti, LargeImagesFromFilesAreReadHeadersFirstThenPixelsAlone) {
  // The scan keeps the chest CT's headers (no second parse) and where each file's pixels lie.
  const std::string folder = kData + "/ct-chest-lung-dx-a0001/lung-kernel";
  FolderStudySource source(folder);
  const auto series = source.ListSeries("");
  ASSERT_EQ(series.size(), 1u);
  for (const auto& id : series[0].instance_ids) {
    const auto at = source.PixelLocationOf(id);
    ASSERT_TRUE(at) << id;
    EXPECT_EQ(at->length, 512u * 512u * 2u) << id;
    EXPECT_EQ(at->offset + at->length, std::filesystem::file_size(id)) << id;
  }
  const auto head = source.TakeHead(series[0].instance_ids[1]);
  ASSERT_TRUE(head);
  EXPECT_FALSE(source.TakeHead(series[0].instance_ids[1])) << "handed over once";
  DcmElement* pixels = nullptr;
  ASSERT_TRUE(head->getDataset()->findAndGetElement(DCM_PixelData, pixels).good());
  EXPECT_EQ(pixels->getLength(), 0u) << "a placeholder: the pixels are read alone";
  // The voxels equal the one-pass conversion's: TwoPassConversion below.
}

TEST(SeriesToNifti, AFileCutShortBetweenTheTwoReadsFailsNamingIt) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "ct-cut";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kData + "/ct-chest-lung-dx-a0001/lung-kernel")) {
    if (files.size() == 6) break;
    files.push_back((dir / entry.path().filename()).string());
    std::filesystem::copy_file(entry.path(), files.back());
  }
  std::sort(files.begin(), files.end());
  FolderStudySource folder(dir.string());
  LoadCallbacks callbacks;
  callbacks.progress = [&](std::size_t done, std::size_t) {
    if (done == files.size()) std::filesystem::resize_file(files[3], std::filesystem::file_size(files[3]) / 2);
  };
  try {
    ConvertSeriesToNifti(folder, folder.ListSeries("")[0], callbacks);
    FAIL() << "a cut file was converted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(files[3]), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  }
}

TEST(SeriesToNifti, FileStemsReplaceUnsafeCharacters) {
  NiftiConversion c;
  c.series_number = 7;
  c.series_description = "T1 MPRAGE/sag: 1.0mm (ax)";
  EXPECT_EQ(NiftiFileStem(c), "7_T1_MPRAGE_sag__1.0mm__ax_");
}

// Every file of the malformed and transfer-syntax corpora converts or fails naming the file.
class NiftiCorpusFile : public ::testing::TestWithParam<std::string> {};

TEST_P(NiftiCorpusFile, ConvertsOrFailsWithAMessageNamingTheFile) {
  const std::string path = GetParam();
  // From bytes in one pass, and from the file in two (headers, then pixels).
  class OneFile : public StudySource {
   public:
    OneFile(std::string path, bool local) : path_(std::move(path)), local_(local) {}
    std::vector<SeriesRef> ListSeries(const std::string&) override { return {{.id = "one", .instance_ids = {path_}}}; }
    std::string FetchInstance(const std::string& id) override { return ReadFileBytes(id); }
    std::string InstancePath(const std::string& id) override { return local_ ? id : ""; }
    bool RereadIsCheap() override { return local_; }

   private:
    std::string path_;
    bool local_;
  };
  for (const bool local : {false, true}) {
    SCOPED_TRACE(local ? "from the file" : "from bytes");
    OneFile source(path, local);
    try {
      const auto parts = ConvertSeriesToNifti(source, source.ListSeries("")[0]);
      ASSERT_FALSE(parts.empty());
      const auto& c = parts[0];
      EXPECT_EQ(c.image.voxels.size(), static_cast<std::size_t>(c.image.dims[0] * c.image.dims[1] * c.image.dims[2] *
                                                                c.image.dims[3] * NiftiBitsPerVoxel(c.image.datatype) / 8));
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(e.code(), ErrorCode::kInternal) << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(MalformedAndZoo, NiftiCorpusFile, ::testing::ValuesIn(testing::CorpusFiles()),
                         [](const auto& info) { return testing::CorpusTestName(info.param, info.index); });

}  // namespace
}  // namespace procnode
