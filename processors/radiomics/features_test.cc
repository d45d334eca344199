// The IBSI digital phantom (5x4x4 voxels, a 74-voxel region, grey levels 1-6 as they are): every
// feature of the implemented families that has a reference value in IBSI's consensus table must
// lie within its tolerance (the table's values are rounded to three significant digits: within half
// a unit of the last significant digit, plus the tolerance). The test counts them and fails on any miss.
#include "processors/radiomics/features.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "nifti/nifti1.h"
#include "processors/radiomics/extraction.h"
#include "processors/radiomics/rtstruct.h"
#include "dicom/folder_source.h"
#include "nifti/series_to_nifti.h"

namespace procnode::radiomics {
namespace {

const std::string kIbsi = std::string(PROCNODE_SHARED_DATA) + "/ibsi";

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (const char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back().push_back(c);
    }
  }
  return cells;
}

Region DigitalPhantom() {
  std::ifstream in(kIbsi + "/ibsi_1_digital_phantom/phantom_voxels.csv");
  EXPECT_TRUE(in) << "the IBSI digital phantom is missing";
  Region r;
  r.dims = {5, 4, 4};
  r.mask.assign(80, 0);
  r.intensities.assign(80, 0);
  r.levels.assign(80, 0);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == 'i') continue;
    const auto cells = SplitCsvLine(line);
    const std::size_t i = std::stoul(cells[0]), j = std::stoul(cells[1]), k = std::stoul(cells[2]);
    const std::size_t v = (k * 4 + j) * 5 + i;
    r.intensities[v] = std::stod(cells[3]);
    r.mask[v] = cells[4] == "1";
    r.levels[v] = static_cast<int>(r.intensities[v]);
  }
  r.grey_levels = 6;
  r.spacing = {2, 2, 2};
  return r;
}

// The IBSI CT phantom (lung cancer CT, 204x201x60, GTV mask), from its NIfTI files.
Region CtPhantom() {
  const Volume image = VolumeFromNifti(ReadNiftiFile(kIbsi + "/ibsi_1_ct_radiomics_phantom/nifti/image/phantom.nii.gz"));
  const Volume mask = VolumeFromNifti(ReadNiftiFile(kIbsi + "/ibsi_1_ct_radiomics_phantom/nifti/mask/mask.nii.gz"));
  EXPECT_EQ(image.dims, mask.dims);
  Region r;
  r.dims = image.dims;
  for (int a = 0; a < 3; ++a) r.spacing[a] = std::abs(image.spacing[a]);
  r.intensities.assign(image.voxels.begin(), image.voxels.end());
  r.mask.resize(mask.voxels.size());
  for (std::size_t i = 0; i < mask.voxels.size(); ++i) r.mask[i] = mask.voxels[i] > 0.5f;
  return r;
}

struct Reference {
  std::string tag, value;
  double tolerance = 0;
};

std::vector<Reference> References(const std::string& file) {
  std::ifstream in(kIbsi + "/reference_values/" + file);
  EXPECT_TRUE(in) << file;
  std::vector<Reference> refs;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const auto cells = SplitCsvLine(line);
    if (cells.size() < 10 || cells[4].empty()) continue;  // no reference value
    refs.push_back({cells[9], cells[4], cells[5].empty() ? 0 : std::stod(cells[5])});
  }
  return refs;
}

// Half a unit of the reference's last significant digit as written ("2.15": 0.005, "567": 0.5;
// an integer's trailing zeros are not significant: "1490", three significant digits, 5); "0": exact.
double HalfLastDigit(const std::string& value) {
  const auto e = value.find_first_of("eE");
  std::string mantissa = value.substr(0, e);
  const int exponent = e == std::string::npos ? 0 : std::stoi(value.substr(e + 1));
  const auto dot = mantissa.find('.');
  if (dot != std::string::npos) return 0.5 * std::pow(10.0, exponent - static_cast<int>(mantissa.size() - dot - 1));
  if (mantissa.find_first_not_of("-0") == std::string::npos) return 1e-9;
  int zeros = 0;
  while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back(), ++zeros;
  return 0.5 * std::pow(10.0, exponent + zeros);
}

// Checks every reference of `file` whose family is implemented against `features`; returns the
// count checked per family and adds a failure per miss.
std::map<std::string, int> CheckReferences(const std::string& file, const FeatureSet& features) {
  static const std::set<std::string> kImplemented{"morph", "loc", "stat", "ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl"};
  std::map<std::string, int> checked;
  for (const Reference& ref : References(file)) {
    const std::string family = ref.tag.substr(0, ref.tag.find('_'));
    // The diagnostics (morph_mask_*, int_mask_*, img_*, vox_*) describe the processing, not the region.
    if (!kImplemented.contains(family) || ref.tag.ends_with("_roi")) continue;
    ++checked[family];
    const auto it = features.values.find(ref.tag);
    if (it == features.values.end()) {
      ADD_FAILURE() << file << ": " << ref.tag << " not computed";
      continue;
    }
    const double expected = std::stod(ref.value);
    const double allowed = ref.tolerance + HalfLastDigit(ref.value) + 1e-12;
    if (std::abs(it->second - expected) > allowed) {
      ADD_FAILURE() << file << ": " << ref.tag << " = " << it->second << ", reference " << ref.value << " +- " << allowed;
    }
  }
  return checked;
}

TEST(Radiomics, DigitalPhantomMeetsEveryIbsiReferenceOfTheImplementedFamilies) {
  FeatureSet features;
  AllFamilies(DigitalPhantom(), features);
  const auto checked = CheckReferences("ibsi_1_reference_values_digital_phantom.csv", features);
  // What the reference table holds for these families (the count is part of the contract).
  const std::map<std::string, int> expected{{"morph", 25}, {"loc", 2}, {"stat", 18}, {"ih", 23}, {"ivh", 6},  {"cm", 150},
                                            {"rlm", 96}, {"szm", 48}, {"dzm", 48}, {"ngt", 15}, {"ngl", 51}};
  EXPECT_EQ(checked, expected);
}

// The CT phantom through each of IBSI's reference configurations (extraction.h presets).
class CtPhantomConfiguration : public ::testing::TestWithParam<std::string> {};

TEST_P(CtPhantomConfiguration, MeetsEveryReferenceOfTheImplementedFamilies) {
  const std::string letter = GetParam();
  const FeatureSet features = Extract(CtPhantom(), Configuration(letter));
  const auto checked = CheckReferences("ibsi_1_reference_values_config_" + letter + ".csv", features);
  const bool two_d = letter == "A" || letter == "B";  // 2D and 2.5D aggregations; the others 3D
  const std::map<std::string, int> expected{{"morph", 25}, {"loc", 2},   {"stat", 18},  {"ih", 23},
                                            {"ivh", 6},    {"cm", two_d ? 100 : 50}, {"rlm", two_d ? 64 : 32},
                                            {"szm", two_d ? 32 : 16}, {"dzm", two_d ? 32 : 16},
                                            {"ngt", two_d ? 10 : 5},  {"ngl", two_d ? 34 : 17}};
  EXPECT_EQ(checked, expected);
  int total = 0;
  for (const auto& [family, count] : checked) total += count;
  std::cout << "configuration " << letter << ": " << total << " references met\n";
}

INSTANTIATE_TEST_SUITE_P(Ibsi, CtPhantomConfiguration, ::testing::Values("A", "B", "C", "D", "E"));

// The CT phantom's RTSTRUCT rasterised onto the CT series (through the converter, as the pipeline
// loads it) gives exactly the region of IBSI's own NIfTI mask: the same voxel count, and every one
// of our voxels in it (found through both grids' affines).
TEST(Radiomics, RtstructGivesTheRegionOfIbsisNiftiMask) {
  const std::string dicom = kIbsi + "/ibsi_1_ct_radiomics_phantom/dicom";
  FolderStudySource source(dicom + "/image");
  const SeriesVolume ct = NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries("")));
  std::ifstream in(dicom + "/mask/DCM_RS_00060.dcm", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rois = ReadStructureSet(bytes, "RTSTRUCT");
  ASSERT_EQ(rois.size(), 1u);
  EXPECT_EQ(rois[0].name, "GTV-1");
  EXPECT_EQ(rois[0].contours.size(), 26u);
  const std::vector<uint8_t> ours = RasteriseRoi(rois[0], ct.volume);
  const NiftiImage reference_image = ReadNiftiFile(kIbsi + "/ibsi_1_ct_radiomics_phantom/nifti/mask/mask.nii.gz");
  const Volume reference = VolumeFromNifti(reference_image);
  std::size_t ours_count = 0, reference_count = 0, both = 0;
  for (const uint8_t m : ours) ours_count += m;
  for (const float m : reference.voxels) reference_count += m > 0.5f;
  // Each of our voxels' centre, in the reference mask's voxel indices.
  const auto& v = ct.volume;
  const auto& r = reference;
  for (std::size_t k = 0; k < v.dims[2]; ++k) {
    for (std::size_t j = 0; j < v.dims[1]; ++j) {
      for (std::size_t i = 0; i < v.dims[0]; ++i) {
        if (!ours[(k * v.dims[1] + j) * v.dims[0] + i]) continue;
        std::array<double, 3> p{};
        for (int a = 0; a < 3; ++a) {
          p[a] = v.origin[a] + i * v.spacing[0] * v.row_direction[a] + j * v.spacing[1] * v.column_direction[a] +
                 k * v.spacing[2] * v.slice_direction[a];
        }
        std::array<long, 3> idx{};
        const std::array<const std::array<double, 3>*, 3> axes{&r.row_direction, &r.column_direction, &r.slice_direction};
        for (int a = 0; a < 3; ++a) {
          double t = 0;
          for (int c = 0; c < 3; ++c) t += (p[c] - r.origin[c]) * (*axes[a])[c];
          idx[a] = std::lround(t / r.spacing[a]);
        }
        if (idx[0] < 0 || idx[1] < 0 || idx[2] < 0 || idx[0] >= static_cast<long>(r.dims[0]) || idx[1] >= static_cast<long>(r.dims[1]) ||
            idx[2] >= static_cast<long>(r.dims[2])) {
          continue;
        }
        both += r.voxels[(idx[2] * r.dims[1] + idx[1]) * r.dims[0] + idx[0]] > 0.5f;
      }
    }
  }
  const double dice = 2.0 * both / (ours_count + reference_count);
  std::cout << "RTSTRUCT: " << ours_count << " voxels, IBSI's NIfTI mask " << reference_count << ", Dice " << dice << "\n";
  EXPECT_EQ(ours_count, reference_count);
  EXPECT_EQ(both, reference_count);
}

TEST(Radiomics, AnUnknownConfigurationIsRefused) { EXPECT_THROW(Configuration("F"), Error); }

TEST(Radiomics, AConstantRegionGivesUndefinedFeaturesWithAReasonNeverNaN) {
  Region r;
  r.dims = {3, 3, 3};
  r.mask.assign(27, 1);
  r.intensities.assign(27, 40.0);
  r.levels.assign(27, 1);
  r.grey_levels = 1;
  FeatureSet features;
  AllFamilies(r, features);
  for (const auto& [tag, value] : features.values) EXPECT_TRUE(std::isfinite(value)) << tag;
  EXPECT_TRUE(features.undefined.contains("stat_skew"));
  EXPECT_TRUE(features.undefined.contains("cm_corr_3D_comb"));
  EXPECT_TRUE(features.undefined.contains("ih_max_grad"));
  EXPECT_TRUE(features.undefined.contains("ngt_contrast_3D"));  // one grey level: no contrast
  EXPECT_DOUBLE_EQ(features.values.at("stat_mean"), 40.0);
  EXPECT_DOUBLE_EQ(features.values.at("cm_joint_max_3D_comb"), 1.0);
}

TEST(Radiomics, AOneVoxelRegionHasNoPairsAndAnEmptyRegionIsRefused) {
  Region r;
  r.dims = {3, 3, 3};
  r.mask.assign(27, 0);
  r.mask[13] = 1;
  r.intensities.assign(27, 7.0);
  r.levels.assign(27, 1);
  r.grey_levels = 1;
  FeatureSet features;
  CooccurrenceFeatures(r, features);
  EXPECT_TRUE(features.undefined.contains("cm_joint_max_3D_avg"));
  EXPECT_FALSE(features.values.contains("cm_joint_max_3D_avg"));
  RunLengthFeatures(r, features);
  EXPECT_DOUBLE_EQ(features.values.at("rlm_r_perc_3D_comb"), 1.0);
  r.mask[13] = 0;
  EXPECT_THROW(IntensityStatistics(r, features), Error);
}

}  // namespace
}  // namespace procnode::radiomics

namespace procnode::radiomics {
namespace {

Region RandomRegion(std::array<std::size_t, 3> dims, std::array<double, 3> spacing, unsigned seed, double fill) {
  Region r;
  r.dims = dims;
  r.spacing = spacing;
  const std::size_t n = dims[0] * dims[1] * dims[2];
  r.mask.assign(n, 0);
  r.intensities.assign(n, 0);
  uint32_t state = seed;
  auto next = [&] { return (state = state * 1664525u + 1013904223u) >> 8; };
  for (std::size_t k = 1; k + 1 < dims[2]; ++k) {
    for (std::size_t j = 1; j + 1 < dims[1]; ++j) {
      for (std::size_t i = 1; i + 1 < dims[0]; ++i) {
        const std::size_t v = (k * dims[1] + j) * dims[0] + i;
        r.mask[v] = (next() % 1000) < fill * 1000;
        r.intensities[v] = static_cast<double>(next() % 200) - 50 + 3.0 * i;
      }
    }
  }
  return r;
}

// A 3x3x3 grid of 1 mm voxels, all of intensity `value`, whose region is the one voxel `voxel`.
Region OneVoxel(std::size_t voxel, double value) {
  Region r;
  r.dims = {3, 3, 3};
  r.spacing = {1, 1, 1};
  r.mask.assign(27, 0);
  r.mask[voxel] = 1;
  r.intensities.assign(27, value);
  return r;
}

// One voxel: the mesh is the octahedron through its six face centres.
TEST(RadiomicsMesh, OneVoxelIsAnOctahedron) {
  const Region r = OneVoxel(13, 5);
  FeatureSet f;
  MorphologyFeatures(r, f);
  MeshMorphologyFeatures(r, f);
  EXPECT_NEAR(f.values.at("morph_volume"), 1.0 / 6, 1e-12);
  EXPECT_NEAR(f.values.at("morph_area_mesh"), std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(f.values.at("morph_diam"), 1.0, 1e-12);
  EXPECT_NEAR(f.values.at("morph_vol_dens_conv_hull"), 1.0, 1e-9);  // an octahedron is convex
  EXPECT_NEAR(f.values.at("morph_integ_int"), 5.0 / 6, 1e-12);
}

// A closed surface's volume does not depend on where the origin is: random shapes (touching
// diagonals, holes, several parts) meshed at two places in the grid give the same volume and area,
// and the volume stays within the voxels' own (marching cubes cuts every convex corner).
TEST(RadiomicsMesh, RandomShapesGiveClosedSurfacesWhereverTheyLie) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    const Region a = RandomRegion({9, 8, 7}, {0.7, 1.1, 2.5}, seed, 0.55);
    Region b = a;
    b.dims = {12, 8, 9};
    b.mask.assign(12 * 8 * 9, 0);
    b.intensities.assign(12 * 8 * 9, 0);
    for (std::size_t k = 0; k < 7; ++k) {
      for (std::size_t j = 0; j < 8; ++j) {
        for (std::size_t i = 0; i < 9; ++i) b.mask[((k + 2) * 8 + j) * 12 + i + 3] = a.mask[(k * 8 + j) * 9 + i];
      }
    }
    FeatureSet fa, fb;
    MeshMorphologyFeatures(a, fa);
    MeshMorphologyFeatures(b, fb);
    EXPECT_NEAR(fa.values.at("morph_volume"), fb.values.at("morph_volume"), 1e-9) << seed;
    EXPECT_NEAR(fa.values.at("morph_area_mesh"), fb.values.at("morph_area_mesh"), 1e-9) << seed;
    EXPECT_GT(fa.values.at("morph_volume"), 0) << seed;
    std::size_t voxels = 0;
    for (const uint8_t m : a.mask) voxels += m;
    EXPECT_LT(fa.values.at("morph_volume"), voxels * 0.7 * 1.1 * 2.5) << seed;
  }
}

// Moran's I and Geary's C through the FFT equal the plain sums over every pair of voxels.
// Interpolating only near the region gives the whole interpolation's values there, for a region
// far from the image's edges (linear and cubic, in 3D and in plane), and nothing further away.
TEST(RadiomicsInterpolation, NearTheRegionEqualsTheWholeImage) {
  Region r = RandomRegion({60, 50, 24}, {0.7, 0.7, 1.5}, 11, 1.0);
  for (std::size_t k = 0; k < r.dims[2]; ++k) {  // the region: a small block in the middle
    for (std::size_t j = 0; j < r.dims[1]; ++j) {
      for (std::size_t i = 0; i < r.dims[0]; ++i) {
        r.mask[(k * r.dims[1] + j) * r.dims[0] + i] = i >= 28 && i < 34 && j >= 20 && j < 27 && k >= 10 && k < 13;
      }
    }
  }
  for (const bool cubic : {false, true}) {
    for (const bool in_plane : {false, true}) {
      Interpolation how{.spacing = {1.0, 1.0, 1.0}, .in_plane = in_plane, .cubic = cubic, .round = false};
      const Region whole = Interpolate(r, how);
      how.near_region_mm = 6.3;
      const Region near = Interpolate(r, how);
      ASSERT_EQ(near.dims, whole.dims);
      EXPECT_EQ(near.mask, whole.mask);
      const auto box = BoundingBox(whole.mask, whole.dims);
      ASSERT_TRUE(box.has_value());
      std::size_t compared = 0, empty = 0;
      for (std::size_t k = 0; k < whole.dims[2]; ++k) {
        for (std::size_t j = 0; j < whole.dims[1]; ++j) {
          for (std::size_t i = 0; i < whole.dims[0]; ++i) {
            const std::array<std::size_t, 3> at{i, j, k};
            bool within = true;
            for (int a = 0; a < 3; ++a) {
              const std::size_t m = static_cast<std::size_t>(std::ceil(6.3 / whole.spacing[a])) + 1;
              within = within && at[a] + m >= box->lo[a] && at[a] <= box->hi[a] + m;
            }
            const std::size_t v = (k * whole.dims[1] + j) * whole.dims[0] + i;
            if (within) {
              ASSERT_EQ(near.intensities[v], whole.intensities[v]) << i << "," << j << "," << k;
              ++compared;
            } else {
              empty += near.intensities[v] == 0 ? 1 : 0;
            }
          }
        }
      }
      EXPECT_GT(compared, 1000u);
      EXPECT_GT(empty, compared) << "most of the image is not interpolated";
    }
  }
}

TEST(RadiomicsMesh, AutocorrelationEqualsThePairwiseSums) {
  for (unsigned seed = 3; seed <= 6; ++seed) {
    const Region r = RandomRegion({11, 9, 6}, {0.8, 0.8, 3.0}, seed, 0.6);
    std::vector<std::array<double, 4>> voxels;  // x, y, z (mm), intensity
    for (std::size_t k = 0; k < r.dims[2]; ++k) {
      for (std::size_t j = 0; j < r.dims[1]; ++j) {
        for (std::size_t i = 0; i < r.dims[0]; ++i) {
          const std::size_t v = (k * r.dims[1] + j) * r.dims[0] + i;
          if (r.mask[v]) voxels.push_back({i * 0.8, j * 0.8, k * 3.0, r.intensities[v]});
        }
      }
    }
    double mean = 0;
    for (const auto& v : voxels) mean += v[3] / voxels.size();
    double w = 0, moran = 0, geary = 0, squares = 0;
    for (const auto& p : voxels) {
      squares += (p[3] - mean) * (p[3] - mean);
      for (const auto& q : voxels) {
        if (&p == &q) continue;
        const double d = 1 / std::sqrt((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2]));
        w += d;
        moran += d * (p[3] - mean) * (q[3] - mean);
        geary += d * (p[3] - q[3]) * (p[3] - q[3]);
      }
    }
    const double n = static_cast<double>(voxels.size());
    FeatureSet f;
    AutocorrelationFeatures(r, f);
    EXPECT_NEAR(f.values.at("morph_moran_i"), n / w * moran / squares, 1e-9) << seed;
    EXPECT_NEAR(f.values.at("morph_geary_c"), (n - 1) * geary / (2 * w * squares), 1e-9) << seed;
  }
  FeatureSet f;
  AutocorrelationFeatures(OneVoxel(4, 1), f);
  EXPECT_TRUE(f.undefined.contains("morph_moran_i"));
  EXPECT_FALSE(f.values.contains("morph_geary_c"));
}

}  // namespace
}  // namespace procnode::radiomics

#include <zlib.h>

#include "processors/radiomics/segmentation.h"

namespace procnode::radiomics {
namespace {

// A gzip-encoded LPS NRRD label image (what dcmqi's tests hold beside their SEGs).
struct Nrrd {
  std::array<std::size_t, 3> sizes{};
  std::array<double, 3> origin{};
  std::array<std::array<double, 3>, 3> directions{};  // one vector per axis
  std::vector<int16_t> values;
};

Nrrd ReadNrrd(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  Nrrd n;
  std::string line;
  while (std::getline(in, line) && !line.empty()) {
    auto numbers = [&](const std::string& text) {
      std::vector<double> v;
      std::string cleaned = text;
      for (char& c : cleaned) {
        if (c == '(' || c == ')' || c == ',') c = ' ';
      }
      std::istringstream s(cleaned);
      double x;
      while (s >> x) v.push_back(x);
      return v;
    };
    if (line.rfind("sizes:", 0) == 0) {
      const auto v = numbers(line.substr(6));
      for (int a = 0; a < 3; ++a) n.sizes[a] = static_cast<std::size_t>(v[a]);
    } else if (line.rfind("space origin:", 0) == 0) {
      const auto v = numbers(line.substr(13));
      for (int a = 0; a < 3; ++a) n.origin[a] = v[a];
    } else if (line.rfind("space directions:", 0) == 0) {
      const auto v = numbers(line.substr(17));
      for (int a = 0; a < 9; ++a) n.directions[a / 3][a % 3] = v[a];
    } else if (line.rfind("type:", 0) == 0) {
      EXPECT_EQ(line, "type: short");
    } else if (line.rfind("encoding:", 0) == 0) {
      EXPECT_EQ(line, "encoding: gzip");
    }
  }
  const std::string packed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  n.values.resize(n.sizes[0] * n.sizes[1] * n.sizes[2]);
  z_stream z{};
  inflateInit2(&z, 16 + MAX_WBITS);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  z.next_out = reinterpret_cast<Bytef*>(n.values.data());
  z.avail_out = static_cast<uInt>(n.values.size() * 2);
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END) << path;
  inflateEnd(&z);
  return n;
}

// The label of the NRRD voxel whose centre is nearest the patient-space point (-1 off its grid).
int NrrdLabelAt(const Nrrd& n, const std::array<double, 3>& p) {
  const auto& d = n.directions;  // columns of the index-to-space matrix
  const double det = d[0][0] * (d[1][1] * d[2][2] - d[2][1] * d[1][2]) - d[1][0] * (d[0][1] * d[2][2] - d[2][1] * d[0][2]) +
                     d[2][0] * (d[0][1] * d[1][2] - d[1][1] * d[0][2]);
  const std::array<double, 3> r{p[0] - n.origin[0], p[1] - n.origin[1], p[2] - n.origin[2]};
  std::array<long, 3> index{};
  for (int a = 0; a < 3; ++a) {  // Cramer's rule: replace axis a's vector by r
    auto m = d;
    m[a] = r;
    const double num = m[0][0] * (m[1][1] * m[2][2] - m[2][1] * m[1][2]) - m[1][0] * (m[0][1] * m[2][2] - m[2][1] * m[0][2]) +
                       m[2][0] * (m[0][1] * m[1][2] - m[1][1] * m[0][2]);
    index[a] = std::lround(num / det);
    if (index[a] < 0 || index[a] >= static_cast<long>(n.sizes[a])) return -1;
  }
  return n.values[(index[2] * n.sizes[1] + index[1]) * n.sizes[0] + index[0]];
}

// A SEG's segments placed on its source series' grid are, voxel for voxel, the label map dcmqi
// made from the same segmentation (label = segment number): BINARY on a 512x512 CT, LABELMAP on
// a small MR, a SEG whose frames cover only part of the series.
TEST(RadiomicsSegmentation, SegmentsEqualDcmqisLabelMaps) {
  const std::string root = std::string(PROCNODE_SHARED_DATA) + "/seg-sr-dcmqi/segmentations/";
  struct Case {
    std::string seg, images, nrrd;
    std::size_t segments;
  };
  for (const Case& c : {Case{"liver.dcm", "ct-3slice", "liver_seg.nrrd", 1},
                        Case{"sparse-labelmap-noppv.dcm", "24x38x3/image", "sparse_labelmap_noppv_seg.nrrd", 1},
                        Case{"sparse-labelmap-ppv5.dcm", "24x38x3/image", "sparse_labelmap_ppv5_seg.nrrd", 1},
                        Case{"23x38x3/seg/label.seg", "23x38x3/image", "23x38x3/nrrd/label.nrrd", 1},
                        Case{"24x38x3/seg/label.seg", "24x38x3/image", "24x38x3/nrrd/label.nrrd", 1}}) {
    FolderStudySource source(root + c.images);
    const SeriesVolume image = NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries("")));
    std::ifstream in(root + c.seg, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto segments = ReadSegmentation(bytes, c.seg, image.volume);
    ASSERT_EQ(segments.size(), c.segments) << c.seg;
    const Nrrd reference = ReadNrrd(root + c.nrrd);
    const Volume& v = image.volume;
    for (const SegmentRegion& s : segments) {
      std::size_t ours = 0, theirs = 0, agree = 0;
      for (std::size_t k = 0; k < v.dims[2]; ++k) {
        for (std::size_t j = 0; j < v.dims[1]; ++j) {
          for (std::size_t i = 0; i < v.dims[0]; ++i) {
            std::array<double, 3> p{};
            for (int a = 0; a < 3; ++a) {
              p[a] = v.origin[a] + i * v.spacing[0] * v.row_direction[a] + j * v.spacing[1] * v.column_direction[a] +
                     k * v.spacing[2] * v.slice_direction[a];
            }
            const bool in_seg = s.voxels[(k * v.dims[1] + j) * v.dims[0] + i] != 0;
            const bool in_nrrd = NrrdLabelAt(reference, p) == s.number;
            ours += in_seg, theirs += in_nrrd, agree += in_seg && in_nrrd;
          }
        }
      }
      std::cout << c.seg << " segment " << s.number << " \"" << s.label << "\": " << ours << " voxels, dcmqi's label map " << theirs << "\n";
      EXPECT_GT(ours, 0u) << c.seg;
      EXPECT_EQ(ours, theirs) << c.seg;
      EXPECT_EQ(agree, theirs) << c.seg;
    }
  }
}

TEST(RadiomicsSegmentation, OverlappingSegmentsEachKeepTheirVoxelsAndBadInputIsRefused) {
  const std::string root = std::string(PROCNODE_SHARED_DATA) + "/seg-sr-dcmqi/segmentations/";
  FolderStudySource source(root + "ct-3slice");
  const SeriesVolume image = NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries("")));
  std::ifstream in(root + "partial_overlaps.dcm", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto segments = ReadSegmentation(bytes, "partial_overlaps.dcm", image.volume);
  ASSERT_EQ(segments.size(), 5u);
  std::vector<int> cover(image.volume.VoxelCount(), 0);
  for (const auto& s : segments) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.voxels.size(); ++i) n += s.voxels[i], cover[i] += s.voxels[i];
    EXPECT_GT(n, 0u) << s.label;
  }
  EXPECT_GT(*std::max_element(cover.begin(), cover.end()), 1);  // the segments overlap
  EXPECT_EQ(segments[0].label, "GREEN");
  // Its own frame of reference keeps it; another image's (another frame of reference) has none of it.
  EXPECT_EQ(ReadSegmentation(bytes, "partial_overlaps.dcm", image.volume, image.sources.front().frame_of_reference_uid).size(), 5u);
  EXPECT_TRUE(ReadSegmentation(bytes, "partial_overlaps.dcm", image.volume, "1.2.3.4").empty());
  // Not a SEG; a SEG cut short.
  std::ifstream ct(root + "ct-3slice/01.dcm", std::ios::binary);
  const std::string ct_bytes((std::istreambuf_iterator<char>(ct)), std::istreambuf_iterator<char>());
  EXPECT_THROW(ReadSegmentation(ct_bytes, "01.dcm", image.volume), Error);
  EXPECT_THROW(ReadSegmentation(bytes.substr(0, bytes.size() - 20000), "cut", image.volume), Error);
}

}  // namespace
}  // namespace procnode::radiomics
