// The IBSI digital phantom (5x4x4 voxels, a 74-voxel region, grey levels 1-6 as they are): every
// feature of the implemented families that has a reference value in IBSI's consensus table must
// lie within its tolerance (the table's values are rounded to three significant digits: within half
// a unit of the last significant digit, plus the tolerance). The test counts them and fails on any miss.
#include "processors/radiomics/features.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

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

TEST(Radiomics, DigitalPhantomMeetsEveryIbsiReferenceOfTheImplementedFamilies) {
  const Region phantom = DigitalPhantom();
  FeatureSet features;
  IntensityStatistics(phantom, features);
  IntensityHistogram(phantom, features);
  IntensityVolumeHistogram(phantom, features);
  CooccurrenceFeatures(phantom, features);
  RunLengthFeatures(phantom, features);
  SizeZoneFeatures(phantom, features);
  DistanceZoneFeatures(phantom, features);
  ToneDifferenceFeatures(phantom, features);
  DependenceFeatures(phantom, features);
  std::map<std::string, int> checked;
  int misses = 0;
  for (const Reference& ref : References("ibsi_1_reference_values_digital_phantom.csv")) {
    const std::string family = ref.tag.substr(0, ref.tag.find('_'));
    static const std::set<std::string> kImplemented{"stat", "ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl"};
    if (!kImplemented.contains(family)) continue;
    const auto it = features.values.find(ref.tag);
    if (it == features.values.end()) {
      ADD_FAILURE() << ref.tag << ": not computed";
      ++misses;
      continue;
    }
    const double expected = std::stod(ref.value);
    const double allowed = ref.tolerance + HalfLastDigit(ref.value) + 1e-12;
    if (std::abs(it->second - expected) > allowed) {
      ADD_FAILURE() << ref.tag << ": " << it->second << ", reference " << ref.value << " +- " << allowed;
      ++misses;
    }
    ++checked[family];
  }
  EXPECT_EQ(misses, 0);
  // What the reference table holds for these families (the count is part of the contract).
  EXPECT_EQ(checked["stat"], 18);
  EXPECT_EQ(checked["ih"], 23);
  EXPECT_EQ(checked["ivh"], 6);
  EXPECT_EQ(checked["cm"], 150);
  EXPECT_EQ(checked["rlm"], 96);
  EXPECT_EQ(checked["szm"], 48);
  EXPECT_EQ(checked["dzm"], 48);
  EXPECT_EQ(checked["ngt"], 15);
  EXPECT_EQ(checked["ngl"], 51);
}

TEST(Radiomics, AConstantRegionGivesUndefinedFeaturesWithAReasonNeverNaN) {
  Region r;
  r.dims = {3, 3, 3};
  r.mask.assign(27, 1);
  r.intensities.assign(27, 40.0);
  r.levels.assign(27, 1);
  r.grey_levels = 1;
  FeatureSet features;
  IntensityStatistics(r, features);
  IntensityHistogram(r, features);
  CooccurrenceFeatures(r, features);
  RunLengthFeatures(r, features);
  SizeZoneFeatures(r, features);
  DistanceZoneFeatures(r, features);
  ToneDifferenceFeatures(r, features);
  DependenceFeatures(r, features);
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
