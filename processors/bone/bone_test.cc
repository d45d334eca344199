// The bone-density method on a synthetic spine: vertebra-like bodies (a 2 mm cortical shell, a
// trabecular interior of known attenuation with noise), discs, a spinal canal enclosed by the
// arch at each body, ribs on the upper bodies, transverse processes on the lower ones, a sacrum
// with its alae at the bottom, inside a soft-tissue trunk.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "processors/bone/bone_density.h"

namespace procnode::bone {
namespace {

enum Tissue : uint8_t { kAir, kSoft, kCanal, kCortex, kTrabecular, kDisc, kMetal };

struct Phantom {
  Volume volume;
  std::vector<uint8_t> tissue;  // the truth per voxel
  std::vector<double> truth_hu; // trabecular attenuation per body, top to bottom (sacrum last)
  std::vector<std::string> levels;
};

struct PhantomSpec {
  int thoracic = 3;       // rib-bearing bodies (the lowest is T12)
  int lumbar = 5;
  bool sacrum = true;
  double slice_mm = 2;
  bool metal_in_l2 = false;
  bool flip = false;      // voxel axes reversed (x to the right, y anterior, slices downwards)
};

Phantom MakeSpine(const PhantomSpec& spec) {
  Phantom ph;
  const double body_h = 24, disc_h = 8, sacrum_h = 30, margin = 6;
  const int bodies = spec.thoracic + spec.lumbar + (spec.sacrum ? 1 : 0);
  const double height = 2 * margin + bodies * body_h + (bodies - 1) * disc_h;
  const int nx = 220, ny = 180, nz = static_cast<int>(std::ceil(height / spec.slice_mm));
  Volume& v = ph.volume;
  v.dims = {static_cast<std::size_t>(nx), static_cast<std::size_t>(ny), static_cast<std::size_t>(nz)};
  v.spacing = {1, 1, spec.slice_mm};
  v.modality = "CT";
  v.units = "HU";
  v.voxels.assign(v.VoxelCount(), -1000);
  ph.tissue.assign(v.VoxelCount(), kAir);
  // The bodies from the top: z of each body's top in mm below the volume's top.
  std::vector<std::pair<double, double>> spans;  // (top, bottom) in mm from the top
  for (int b = 0; b < bodies; ++b) {
    const double top = margin + b * (body_h + disc_h);
    spans.push_back({top, top + (spec.sacrum && b == bodies - 1 ? sacrum_h : body_h)});
  }
  const std::vector<double> hu{190, 175, 160, 140, 130, 120, 105, 95, 100, 110};
  for (int b = 0; b < bodies; ++b) ph.truth_hu.push_back(hu[b % hu.size()]);
  std::mt19937 random(7);
  std::normal_distribution<float> noise(0, 15);
  const double cx = 110, canal_y = 125, canal_r = 8, body_y = 101, body_a = 20, body_b = 15;
  for (int k = 0; k < nz; ++k) {
    const double depth = height - (k + 0.5) * spec.slice_mm;  // mm from the top (k = 0 at the bottom)
    int body = -1;
    bool disc = false;
    for (int b = 0; b < bodies; ++b) {
      if (depth >= spans[b].first && depth < spans[b].second) body = b;
      if (b + 1 < bodies && depth >= spans[b].second && depth < spans[b + 1].first) disc = true;
    }
    const bool sacral = spec.sacrum && body == bodies - 1;
    const bool ribbed = body >= 0 && body < spec.thoracic && depth < spans[body].first + 8;
    const bool lumbar = body >= spec.thoracic && !sacral;
    for (int j = 0; j < ny; ++j) {
      for (int i = 0; i < nx; ++i) {
        const double x = i + 0.5, y = j + 0.5;
        const std::size_t at = (static_cast<std::size_t>(k) * ny + j) * nx + i;
        Tissue t = kAir;
        if (std::pow((x - cx) / 100, 2) + std::pow((y - 90) / 80, 2) <= 1) t = kSoft;
        const double rc = std::hypot(x - cx, y - canal_y);
        const double ellipse = std::pow((x - cx) / body_a, 2) + std::pow((y - body_y) / body_b, 2);
        if (t == kSoft && body >= 0) {
          // Distance to the body's surface, approximately: in-plane (ellipse) and to its end plates.
          const double inplane = (1 - std::sqrt(ellipse)) * body_b;
          const double vertical = std::min(depth - spans[body].first, spans[body].second - depth);
          if (ellipse <= 1) t = std::min(inplane, vertical) < 2 ? kCortex : kTrabecular;
          if (rc >= canal_r && rc <= canal_r + 4) t = kCortex;                                            // the arch
          if (std::abs(x - cx) <= 3 && y > canal_y + canal_r && y < canal_y + 35) t = kCortex;           // spinous process
          if (lumbar && std::abs(y - canal_y) <= 3 && std::abs(x - cx) <= 42 && std::abs(x - cx) > canal_r) t = kCortex;
          if (ribbed && y >= 120 && y <= 130 && std::abs(x - cx) > canal_r && std::abs(x - cx) <= 110) t = kCortex;
          if (sacral && y >= 95 && y <= 110 && std::abs(x - cx) <= 75 && ellipse > 1) t = kCortex;     // the alae
          if (spec.metal_in_l2 && body == spec.thoracic + 1 && std::hypot(x - cx - 10, y - body_y) < 2) t = kMetal;
        } else if (t == kSoft && disc && ellipse <= 1) {
          t = kDisc;
        }
        if (t == kSoft && rc < canal_r) t = kCanal;
        float value = 0;
        switch (t) {
          case kAir: value = -1000; break;
          case kSoft: value = 40; break;
          case kCanal: value = 15; break;
          case kCortex: value = 700; break;
          case kTrabecular: value = static_cast<float>(ph.truth_hu[body]); break;
          case kDisc: value = 90; break;
          case kMetal: value = 3071; break;  // where 12-bit scanners saturate
        }
        if (t != kAir && t != kMetal) value += noise(random);
        v.voxels[at] = value;
        ph.tissue[at] = t;
      }
    }
  }
  // Patient axes: x to the left, y posterior, k = 0 at the bottom (slices go up).
  v.origin = {-110, -90, -height};
  v.slice_direction = {0, 0, 1};
  if (spec.flip) {  // the same voxels stored with every axis reversed
    Volume f = v;
    std::vector<uint8_t> tissue(ph.tissue.size());
    for (int k = 0; k < nz; ++k) {
      for (int j = 0; j < ny; ++j) {
        for (int i = 0; i < nx; ++i) {
          const std::size_t from = (static_cast<std::size_t>(k) * ny + j) * nx + i;
          const std::size_t to = (static_cast<std::size_t>(nz - 1 - k) * ny + (ny - 1 - j)) * nx + (nx - 1 - i);
          f.voxels[to] = v.voxels[from];
          tissue[to] = ph.tissue[from];
        }
      }
    }
    f.row_direction = {-1, 0, 0};
    f.column_direction = {0, -1, 0};
    f.slice_direction = {0, 0, -1};
    f.origin = {v.origin[0] + (nx - 1), v.origin[1] + (ny - 1), v.origin[2] + (nz - 1) * spec.slice_mm};
    ph.volume = std::move(f);
    ph.tissue = std::move(tissue);
  }
  for (int b = 0; b < spec.thoracic; ++b) ph.levels.push_back("T" + std::to_string(12 - spec.thoracic + 1 + b));
  for (int b = 0; b < spec.lumbar; ++b) ph.levels.push_back("L" + std::to_string(b + 1));
  return ph;
}

TEST(BoneDensity, MeasuresEachBodysTrabecularBoneAndNamesTheLevelsFromTheRibs) {
  const Phantom ph = MakeSpine({});
  const BoneParameters p;
  const BoneResult r = MeasureBoneDensity(ph.volume, p);
  ASSERT_TRUE(r.sacrum_found);
  ASSERT_EQ(r.bodies.size(), 8u);
  for (std::size_t i = 0; i < r.bodies.size(); ++i) {
    const VertebralBody& b = r.bodies[i];
    SCOPED_TRACE(ph.levels[i]);
    EXPECT_EQ(b.level, ph.levels[i]);
    EXPECT_EQ(b.RibBearing(), i < 3);
    EXPECT_EQ(b.confidence, i < 3 ? "moderate" : "high") << b.level_method;
    EXPECT_FALSE(b.excluded) << b.exclusion;
    EXPECT_NEAR(b.mean_hu, ph.truth_hu[i], 2.0);
    EXPECT_NEAR(b.median_hu, ph.truth_hu[i], 3.0);
    EXPECT_NEAR(b.sd_hu, 15, 2.0);
    EXPECT_GT(b.roi_voxels, 500u);
    EXPECT_NEAR(b.height_mm, 24, 4.1);
  }
  // No ROI voxel outside the trabecular interior (no cortex, no disc, no canal), every ROI
  // inside its own body's label.
  std::size_t roi = 0;
  for (std::size_t at = 0; at < r.labels.size(); ++at) {
    if (r.labels[at] == 0 || r.labels[at] % 2 == 1) continue;
    ++roi;
    ASSERT_EQ(ph.tissue[at], kTrabecular) << "ROI voxel " << at << " of label " << int(r.labels[at]);
  }
  EXPECT_GT(roi, 8 * 500u);
  EXPECT_EQ(r.key_level, "L1");
  EXPECT_EQ(r.triage, "DXA suggested");  // 140 HU
  EXPECT_EQ(TriageBand(110, p), "osteoporosis likely");
  EXPECT_EQ(TriageBand(160.5, p), "osteoporosis unlikely");
  EXPECT_EQ(r.sagittal_column, 110u);
  const nlohmann::json j = BoneResultJson(r, p);
  EXPECT_EQ(j["key"]["level"], "L1");
  EXPECT_EQ(j["bodies"].size(), 8u);
}

TEST(BoneDensity, AnyVoxelOrderGivesTheSameBodies) {
  const Phantom a = MakeSpine({});
  PhantomSpec flipped;
  flipped.flip = true;
  const Phantom b = MakeSpine(flipped);
  const BoneResult ra = MeasureBoneDensity(a.volume, {}), rb = MeasureBoneDensity(b.volume, {});
  ASSERT_EQ(ra.bodies.size(), rb.bodies.size());
  for (std::size_t i = 0; i < ra.bodies.size(); ++i) {
    EXPECT_EQ(ra.bodies[i].level, rb.bodies[i].level);
    EXPECT_NEAR(ra.bodies[i].mean_hu, rb.bodies[i].mean_hu, 1.0);
    EXPECT_NEAR(ra.bodies[i].centre_z_mm, rb.bodies[i].centre_z_mm, 0.01);
  }
  for (std::size_t at = 0; at < rb.labels.size(); ++at) {
    if (rb.labels[at] != 0 && rb.labels[at] % 2 == 0) {
      ASSERT_EQ(b.tissue[at], kTrabecular);
    }
  }
}

TEST(BoneDensity, AnExtraLumbarBodyLeavesTheLumbarLevelsUncertain) {
  PhantomSpec spec;
  spec.lumbar = 6;
  const Phantom ph = MakeSpine(spec);
  const BoneResult r = MeasureBoneDensity(ph.volume, {});
  ASSERT_EQ(r.bodies.size(), 9u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(r.bodies[i].level, ph.levels[i]);
  for (std::size_t i = 3; i < 9; ++i) {
    EXPECT_EQ(r.bodies[i].level, "");
    EXPECT_EQ(r.bodies[i].confidence, "uncertain");
    EXPECT_NE(r.bodies[i].level_method.find("6 rib-free vertebrae"), std::string::npos) << r.bodies[i].level_method;
    EXPECT_FALSE(r.bodies[i].excluded);  // measured all the same
  }
  EXPECT_EQ(r.key_level, "T12");  // L1 is not named: the key figure falls back to T12
}

TEST(BoneDensity, WithoutTheRibTransitionNoLevelIsGuessed) {
  PhantomSpec spec;
  spec.thoracic = 0;
  spec.sacrum = false;
  const Phantom ph = MakeSpine(spec);
  const BoneResult r = MeasureBoneDensity(ph.volume, {});
  ASSERT_EQ(r.bodies.size(), 5u);
  for (const auto& b : r.bodies) {
    EXPECT_EQ(b.level, "");
    EXPECT_EQ(b.level_method, "no rib-bearing vertebra in the field of view");
  }
  EXPECT_EQ(r.key_body, -1);
  EXPECT_FALSE(r.warnings.empty());
}

TEST(BoneDensity, MetalInABodyExcludesThatLevel) {
  PhantomSpec spec;
  spec.metal_in_l2 = true;
  const Phantom ph = MakeSpine(spec);
  const BoneResult r = MeasureBoneDensity(ph.volume, {});
  ASSERT_EQ(r.bodies.size(), 8u);
  EXPECT_TRUE(r.bodies[4].excluded);
  EXPECT_NE(r.bodies[4].exclusion.find("metal"), std::string::npos) << r.bodies[4].exclusion;
  EXPECT_FALSE(r.bodies[3].excluded);
  EXPECT_EQ(r.key_level, "L1");
}

TEST(BoneDensity, FiveMillimetreSlicesFindTheSameBodies) {
  PhantomSpec spec;
  spec.slice_mm = 5;
  const Phantom ph = MakeSpine(spec);
  const BoneResult r = MeasureBoneDensity(ph.volume, {});
  ASSERT_EQ(r.bodies.size(), 8u);
  for (std::size_t i = 0; i < r.bodies.size(); ++i) {
    EXPECT_EQ(r.bodies[i].level, ph.levels[i]);
    EXPECT_NEAR(r.bodies[i].mean_hu, ph.truth_hu[i], 2.0);
  }
}

TEST(BoneDensity, RefusesWhatItCannotMeasure) {
  auto message = [](const Volume& v, const BoneParameters& p) {
    try {
      MeasureBoneDensity(v, p);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  PhantomSpec small;
  small.thoracic = 1;
  small.lumbar = 1;
  small.sacrum = false;
  Phantom ph = MakeSpine(small);
  Volume mr = ph.volume;
  mr.modality = "MR";
  EXPECT_NE(message(mr, {}).find("not CT"), std::string::npos);
  Volume tilted = ph.volume;
  tilted.slice_direction = {0, std::sin(0.6), std::cos(0.6)};
  tilted.column_direction = {0, std::cos(0.6), -std::sin(0.6)};
  EXPECT_NE(message(tilted, {}).find("not axial"), std::string::npos);
  BoneParameters thin;
  thin.max_slice_mm = 1.5;
  EXPECT_NE(message(ph.volume, thin).find("more than the 1.5 mm accepted"), std::string::npos);
  Volume soft = ph.volume;
  for (std::size_t at = 0; at < soft.voxels.size(); ++at) {
    if (ph.tissue[at] != kAir) soft.voxels[at] = 40;
  }
  EXPECT_NE(message(soft, {}).find("no spinal column"), std::string::npos);
}

}  // namespace
}  // namespace procnode::bone
