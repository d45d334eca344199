// The lung processor: its CPU twin against independent reference code, its segmentation and
// measurements on a phantom with known anatomy, and plausibility on the real chest CT (both
// reconstruction kernels). The CUDA kernels' parity with these is in cuda/lung_parity_test.cc.
#include "processors/lung/lung_emphysema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <numbers>

#include "core/error.h"
#include "nifti/series_to_nifti.h"
#include "dicom/folder_source.h"
#include "processors/builtin.h"
#include "processors/lung/lung_ops.h"
#include "processors/lung/lung_test_support.h"
#include "processors/processor.h"

namespace procnode::lung {
namespace {

using testing::MakeChestPhantom;
using testing::RandomMask;
using testing::ReferenceLabels;

TEST(LungBackendCpu, LabelsEqualBreadthFirstSearchIn2dAnd3d) {
  auto cpu = MakeCpuLungBackend();
  for (const Grid g : {Grid{37, 23, 19}, Grid{64, 64, 33}, Grid{5, 300, 2}}) {
    for (const double density : {0.3, 0.55, 0.75}) {
      const auto mask = RandomMask(g, density, static_cast<unsigned>(g.Count() * density * 100));
      for (const bool connect : {false, true}) {
        std::vector<int32_t> labels(g.Count());
        cpu->Label(mask.data(), g, connect, labels.data());
        ASSERT_EQ(labels, ReferenceLabels(mask, g, connect))
            << g.nx << "x" << g.ny << "x" << g.nz << " density " << density << " 3D " << connect;
      }
    }
  }
}

TEST(LungBackendCpu, ThresholdErosionAndHistogramFollowTheirDefinitions) {
  auto cpu = MakeCpuLungBackend();
  const Grid g{31, 17, 11};
  std::mt19937 random(7);
  std::uniform_real_distribution<float> hu(-1100.0f, 3200.0f);
  std::vector<float> values(g.Count());
  for (auto& v : values) v = hu(random);
  values[0] = -950.0f;  // exactly at the threshold: not below
  values[1] = -950.5f;
  const auto within = RandomMask(g, 0.5, 3);
  std::vector<uint8_t> below(g.Count());
  cpu->Threshold(values.data(), g, -950.0f, within.data(), below.data());
  for (std::size_t i = 0; i < g.Count(); ++i) ASSERT_EQ(below[i], values[i] < -950.0f && within[i]) << i;

  const auto mask = RandomMask(g, 0.8, 4);
  std::vector<uint8_t> eroded(g.Count());
  cpu->ErodeInPlane(mask.data(), g, eroded.data());
  for (int z = 0; z < g.nz; ++z) {
    for (int y = 0; y < g.ny; ++y) {
      for (int x = 0; x < g.nx; ++x) {
        auto at = [&](int xx, int yy) {
          return xx >= 0 && yy >= 0 && xx < g.nx && yy < g.ny && mask[(static_cast<std::size_t>(z) * g.ny + yy) * g.nx + xx];
        };
        const bool expected = at(x, y) && at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1) &&
                              x > 0 && y > 0 && x < g.nx - 1 && y < g.ny - 1;
        ASSERT_EQ(eroded[(static_cast<std::size_t>(z) * g.ny + y) * g.nx + x], expected) << x << "," << y << "," << z;
      }
    }
  }

  std::vector<uint8_t> labels(g.Count());
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>(i % 4);  // 0..3; 3 is outside
  std::vector<uint64_t> bins(2 * kHistogramBins);
  cpu->Histogram(values.data(), labels.data(), g, 2, bins.data());
  std::vector<uint64_t> expected(2 * kHistogramBins, 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (labels[i] < 1 || labels[i] > 2) continue;
    const int hu_floor = static_cast<int>(std::floor(values[i]));
    const int bin = std::clamp(hu_floor + 1024, 0, kHistogramBins - 1);
    ++expected[(labels[i] - 1) * kHistogramBins + bin];
  }
  EXPECT_EQ(bins, expected);
}

TEST(LungBackend, AGpuPreferenceWithoutAGpuRunsTheCpuTwinAndSaysWhy) {
  if (ProbeGpu().found) GTEST_SKIP() << "this machine has a GPU; the fallback is exercised where there is none";
  std::string reason;
  auto backend = MakeLungBackend(DevicePreference::kGpu, &reason);
  EXPECT_EQ(backend->Device(), "cpu");
  // Why: no GPU on this machine, or (a build without CUDA, as the sanitizer build) none compiled in.
  EXPECT_TRUE(reason.find(ProbeGpu().compiled ? "no GPU" : "built without CUDA") != std::string::npos) << reason;
  EXPECT_THROW(MakeCudaLungBackend(), Error);
}

double EllipsoidMl(const testing::Ellipsoid& e, double voxel_ml) {
  return 4.0 / 3.0 * std::numbers::pi * e.rx * e.ry * e.rz * voxel_ml;
}

TEST(LungEmphysema, PhantomLungsAreSidedMeasuredAndFreeOfTheAirways) {
  const auto phantom = MakeChestPhantom(false);
  auto cpu = MakeCpuLungBackend();
  const LungResult r = SegmentLungsAndQuantify(phantom.volume, {}, *cpu);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_FALSE(r.split_at_junction);
  // Volumes within 5% of the analytic ellipsoids; the right lung holds the low-attenuation sphere.
  EXPECT_NEAR(r.right.volume_ml, EllipsoidMl(phantom.right, phantom.voxel_ml), 0.05 * EllipsoidMl(phantom.right, phantom.voxel_ml));
  EXPECT_NEAR(r.left.volume_ml, EllipsoidMl(phantom.left, phantom.voxel_ml), 0.05 * EllipsoidMl(phantom.left, phantom.voxel_ml));
  const double sphere_ml = EllipsoidMl(phantom.emphysema, phantom.voxel_ml);
  EXPECT_NEAR(r.right.emphysema_ml, sphere_ml, 0.25 * sphere_ml);
  EXPECT_EQ(r.left.emphysema_voxels, 0u);
  EXPECT_NEAR(r.right.laa_percent, 100 * sphere_ml / r.right.volume_ml, 1e-9 + 0.3 * 100 * sphere_ml / r.right.volume_ml);
  EXPECT_EQ(r.right.clusters, 1u);
  EXPECT_EQ(r.left.clusters, 0u);
  EXPECT_FALSE(r.total.cluster_exponent_defined);  // one cluster: no size distribution
  EXPECT_EQ(r.right.percentile_hu, -850);
  EXPECT_EQ(r.left.percentile_hu, -850);
  EXPECT_DOUBLE_EQ(r.left.mean_hu, -850);
  EXPECT_NEAR(r.right.mean_hu, (-850 * (r.right.volume_ml - r.right.emphysema_ml) - 980 * r.right.emphysema_ml) / r.right.volume_ml, 1e-6);
  EXPECT_NEAR(r.right.laa2_percent, r.right.laa_percent, 1e-9);  // nothing between -950 and -910
  // Labels: the right lung (patient right = LPS -x = low voxel x here), the left, the sphere as emphysema.
  auto label = [&](int x, int y, int z) { return r.labels[(static_cast<std::size_t>(z) * 128 + y) * 128 + x]; };
  EXPECT_EQ(label(40, 62, 15), 1);
  EXPECT_EQ(label(88, 62, 15), 2);
  EXPECT_EQ(label(40, 62, 25), 3);
  // Trachea and main bronchi are removed: found, with the carina where the phantom's trachea splits.
  ASSERT_TRUE(r.airway.found);
  EXPECT_EQ(r.airway.top_slice, 59);
  EXPECT_EQ(r.airway.carina_slice, 39);
  EXPECT_NEAR(r.airway.trachea_at_carina[0], 64, 0.5);
  EXPECT_NEAR(r.airway.trachea_at_carina[1], 50, 0.5);
  EXPECT_EQ(label(64, 50, 42), 0);  // trachea beside the lung apices
  EXPECT_EQ(label(57, 51, 38), 0);  // right main bronchus
  EXPECT_EQ(label(71, 51, 38), 0);  // left main bronchus
}

TEST(LungEmphysema, PhantomLungsTouchingAtTheJunctionAreSplitBetweenThem) {
  const auto phantom = MakeChestPhantom(true);
  auto cpu = MakeCpuLungBackend();
  const LungResult r = SegmentLungsAndQuantify(phantom.volume, {}, *cpu);
  EXPECT_TRUE(r.split_at_junction);
  // Each side keeps (nearly) its own ellipsoid: the overlap is only where they touch.
  EXPECT_NEAR(r.right.volume_ml, EllipsoidMl(phantom.right, phantom.voxel_ml), 0.08 * EllipsoidMl(phantom.right, phantom.voxel_ml));
  EXPECT_NEAR(r.left.volume_ml, EllipsoidMl(phantom.left, phantom.voxel_ml), 0.08 * EllipsoidMl(phantom.left, phantom.voxel_ml));
  auto label = [&](int x, int y, int z) { return r.labels[(static_cast<std::size_t>(z) * 128 + y) * 128 + x]; };
  EXPECT_EQ(label(30, 62, 25), 1);
  EXPECT_EQ(label(85, 62, 25), 2);
}

TEST(LungEmphysema, TheAccurateVariantAndSmoothingKeepThePhantomMeasurements) {
  const auto phantom = MakeChestPhantom(false);
  auto cpu = MakeCpuLungBackend();
  const LungResult fast = SegmentLungsAndQuantify(phantom.volume, {}, *cpu);
  const LungResult accurate = SegmentLungsAndQuantify(phantom.volume, {.variant = "accurate"}, *cpu);
  // Convex lungs: closing adds nothing but what hole filling already added.
  EXPECT_NEAR(accurate.total.volume_ml, fast.total.volume_ml, 0.01 * fast.total.volume_ml);
  const LungResult smoothed = SegmentLungsAndQuantify(phantom.volume, {.smoothing_mm = 2}, *cpu);
  EXPECT_EQ(smoothed.total.voxels, fast.total.voxels);  // segmentation is on the original values
  EXPECT_LT(smoothed.right.emphysema_voxels, fast.right.emphysema_voxels);  // the sphere's rim is blurred above -950
}

TEST(LungEmphysema, VolumesThatAreNotAChestCtAreRefusedWithTheReason) {
  auto cpu = MakeCpuLungBackend();
  auto refused = [&](const Volume& v, const std::string& words) {
    try {
      SegmentLungsAndQuantify(v, {}, *cpu);
      ADD_FAILURE() << "accepted; expected: " << words;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  Volume mr = MakeChestPhantom(false).volume;
  mr.modality = "MR";
  mr.units = "";
  refused(mr, "needs CT");
  Volume coronal = MakeChestPhantom(false).volume;
  coronal.column_direction = {0, 0, -1};
  coronal.slice_direction = {0, 1, 0};
  refused(coronal, "axial");
  Volume thin = MakeChestPhantom(false).volume;
  thin.dims[2] = 4;
  thin.voxels.resize(thin.VoxelCount());
  refused(thin, "chest volume");
  Volume air = MakeChestPhantom(false).volume;
  std::fill(air.voxels.begin(), air.voxels.end(), -1000.0f);
  refused(air, "no body");
  Volume water = MakeChestPhantom(false).volume;
  for (auto& v : water.voxels) v = v < -900 ? v : 0.0f;  // lungs become water; the airways stay
  refused(water, "no lung fields");
  EXPECT_THROW(SegmentLungsAndQuantify(MakeChestPhantom(false).volume, {.variant = "precise"}, *cpu), Error);
}

TEST(LungEmphysema, AStopRequestEndsTheRunAsCancelled) {
  auto cpu = MakeCpuLungBackend();
  int steps = 0;
  LungCallbacks callbacks{.progress = [&](double, const std::string&) { ++steps; }, .stop_requested = [&] { return steps >= 2; }};
  try {
    SegmentLungsAndQuantify(MakeChestPhantom(false).volume, {}, *cpu, callbacks);
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
}

// The real chest CT (Lung-PET-CT-Dx A0001), both reconstruction kernels, through the pipeline's
// volume stage.
struct ChestRun {
  Volume volume;
  LungResult result;
};

const ChestRun& Chest(const std::string& kernel) {
  static std::map<std::string, ChestRun> runs;
  auto it = runs.find(kernel);
  if (it == runs.end()) {
    FolderStudySource source(std::string(PROCNODE_SHARED_DATA) + "/ct-chest-lung-dx-a0001/" + kernel);
    ChestRun run;
    run.volume = NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries(""))).volume;
    auto cpu = MakeCpuLungBackend();
    run.result = SegmentLungsAndQuantify(run.volume, {}, *cpu);
    it = runs.emplace(kernel, std::move(run)).first;
  }
  return it->second;
}

class ChestCt : public ::testing::TestWithParam<std::string> {};

TEST_P(ChestCt, LungVolumesDensitiesAndSidesArePlausible) {
  const LungResult& r = Chest(GetParam()).result;
  // Adult lungs at inspiration: 3 to 9 L in all; the right lung the larger (three lobes).
  EXPECT_GT(r.total.volume_ml, 3000);
  EXPECT_LT(r.total.volume_ml, 9000);
  EXPECT_GT(r.right.volume_ml, 1200);
  EXPECT_GT(r.left.volume_ml, 1000);
  const double ratio = r.left.volume_ml / r.right.volume_ml;
  EXPECT_GT(ratio, 0.6);
  EXPECT_LT(ratio, 1.05);
  for (const LungMeasures* m : {&r.right, &r.left, &r.total}) {
    EXPECT_GT(m->mean_hu, -900);
    EXPECT_LT(m->mean_hu, -700);
    EXPECT_GT(m->percentile_hu, -1000);
    EXPECT_LT(m->percentile_hu, -850);
    EXPECT_GE(m->laa2_percent, m->laa_percent);
  }
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
}

TEST_P(ChestCt, TheTracheaAtTheCarinaIsOutsideTheLungsAndBetweenThem) {
  const ChestRun& run = Chest(GetParam());
  const LungResult& r = run.result;
  const Volume& v = run.volume;
  ASSERT_TRUE(r.airway.found);
  ASSERT_GE(r.airway.carina_slice, 0);
  // Just above the carina: the trachea's centre is air, unlabelled, and the air region around
  // it in that slice (grown independently here) is tube-sized and holds no lung label.
  const int z = r.airway.carina_slice + (v.slice_direction[2] > 0 ? 1 : -1);
  const int cx = static_cast<int>(std::lround(r.airway.trachea_at_carina[0]));
  const int cy = static_cast<int>(std::lround(r.airway.trachea_at_carina[1]));
  const std::size_t nx = v.dims[0], ny = v.dims[1];
  auto index = [&](int x, int y) { return (static_cast<std::size_t>(z) * ny + y) * nx + x; };
  // The centroid of a cross-section about to split may lie on the carinal spur: start from the
  // nearest air voxel within 8 mm.
  int sx = -1, sy = -1;
  double nearest = 8.0;
  for (int y = cy - 12; y <= cy + 12; ++y) {
    for (int x = cx - 12; x <= cx + 12; ++x) {
      const double d = std::hypot((x - cx) * v.spacing[0], (y - cy) * v.spacing[1]);
      if (d <= nearest && v.voxels[index(x, y)] < -900) {
        nearest = d;
        sx = x;
        sy = y;
      }
    }
  }
  ASSERT_GE(sx, 0) << "no air within 8 mm of the reported trachea";
  std::vector<uint8_t> seen(nx * ny, 0);
  std::deque<std::pair<int, int>> queue{{sx, sy}};
  seen[static_cast<std::size_t>(sy) * nx + sx] = 1;
  std::size_t area = 0, labelled = 0;
  while (!queue.empty() && area < 100000) {
    const auto [x, y] = queue.front();
    queue.pop_front();
    ++area;
    labelled += r.labels[index(x, y)] != 0;
    for (const auto& [dx, dy] : {std::pair{1, 0}, std::pair{-1, 0}, std::pair{0, 1}, std::pair{0, -1}}) {
      const int xx = x + dx, yy = y + dy;
      if (xx < 0 || yy < 0 || xx >= static_cast<int>(nx) || yy >= static_cast<int>(ny)) continue;
      if (seen[static_cast<std::size_t>(yy) * nx + xx] || v.voxels[index(xx, yy)] >= -500) continue;
      seen[static_cast<std::size_t>(yy) * nx + xx] = 1;
      queue.push_back({xx, yy});
    }
  }
  const double area_mm2 = static_cast<double>(area) * v.spacing[0] * v.spacing[1];
  EXPECT_GT(area_mm2, 80);
  EXPECT_LT(area_mm2, 700);
  EXPECT_EQ(labelled, 0u);
  // The right lung lies to the patient's right of it (LPS -x), the left lung to the left.
  std::size_t right_side = 0, left_side = 0, wrong = 0;
  for (int x = 0; x < static_cast<int>(nx); ++x) {
    for (int y = 0; y < static_cast<int>(ny); ++y) {
      const uint8_t l = r.labels[index(x, y)];
      if (l == 0) continue;
      const bool patient_left_of_trachea = (x - cx) * v.row_direction[0] + (y - cy) * v.column_direction[0] > 0;
      const bool is_left = l == 2 || l == 4;
      (is_left ? left_side : right_side)++;
      wrong += is_left != patient_left_of_trachea;
    }
  }
  EXPECT_GT(right_side, 1000u);
  EXPECT_GT(left_side, 1000u);
  EXPECT_LT(wrong, (right_side + left_side) / 100);
}

INSTANTIATE_TEST_SUITE_P(BothKernels, ChestCt, ::testing::Values("lung-kernel", "standard-kernel"),
                         [](const auto& info) { return info.param == "lung-kernel" ? "LungKernel" : "StandardKernel"; });

TEST(ChestCtKernels, TheSharpLungKernelReadsMoreLowAttenuationThanTheStandardKernel) {
  const LungResult& sharp = Chest("lung-kernel").result;
  const LungResult& standard = Chest("standard-kernel").result;
  EXPECT_GT(sharp.total.laa_percent, 2 * standard.total.laa_percent + 1);
  // Same patient, same acquisition: lung volumes agree within 5% across kernels.
  EXPECT_NEAR(sharp.total.volume_ml, standard.total.volume_ml, 0.05 * standard.total.volume_ml);
}

TEST(LungEmphysemaProcessor, TheRegistryResolvesParametersAndRunsIt) {
  const Processor& p = BuiltinProcessors().Get("lung-emphysema");
  EXPECT_EQ(p.Info().modalities, std::vector<std::string>{"CT"});
  const auto parameters = ResolveParameters(p.Info(), {{"smoothing_mm", 1}, {"variant", "accurate"}});
  EXPECT_EQ(parameters["emphysema_threshold_hu"], -950);
  EXPECT_EQ(parameters["variant"], "accurate");
  EXPECT_THROW(ResolveParameters(p.Info(), {{"smoothing_mm", 9}}), Error);
  EXPECT_THROW(ResolveParameters(p.Info(), {{"variant", "precise"}}), Error);
  EXPECT_THROW(ResolveParameters(p.Info(), {{"threshold", -950}}), Error);
  EXPECT_THROW(ResolveParameters(p.Info(), {{"fill_holes", "yes"}}), Error);
  const auto output = p.Run(MakeChestPhantom(false).volume, parameters, {.device = DevicePreference::kCpu});
  EXPECT_EQ(output.labels.size(), 128u * 128u * 60u);
  EXPECT_EQ(output.device, "cpu");
  EXPECT_GT(output.measurements["right_lung"]["volume_ml"].get<double>(), 500);
  EXPECT_EQ(output.measurements["parameters"]["variant"], "accurate");
  EXPECT_EQ(ParameterSchema(p.Info())["properties"]["emphysema_threshold_hu"]["default"], -950);
  Volume mr = MakeChestPhantom(false).volume;
  mr.modality = "MR";
  EXPECT_NE(RejectionReason(p.Info(), mr).find("accepts CT"), std::string::npos);
}

}  // namespace
}  // namespace procnode::lung

namespace procnode {
namespace {

// schemas/processors/NAME.parameters.schema.json is the published contract: it must be what the code checks.
TEST(ProcessorRegistry, TheParameterSchemasInTheRepositoryAreTheOnesTheCodeChecks) {
  ASSERT_GE(BuiltinProcessors().All().size(), 2u);
  for (const Processor* p : BuiltinProcessors().All()) {
    const std::string path = std::string(PROCNODE_SOURCE_DIR) + "/schemas/processors/" + p->Info().name + ".parameters.schema.json";
    std::ifstream in(path);
    ASSERT_TRUE(in) << path << " is missing: run scripts/processor-schemas.sh";
    EXPECT_EQ(nlohmann::json::parse(in), ParameterSchema(p->Info())) << path << " differs: run scripts/processor-schemas.sh";
  }
  EXPECT_EQ(BuiltinProcessors().Find("lung-segmentation"), nullptr);
  try {
    BuiltinProcessors().Get("lung-segmentation");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known: volume-stats, lung-emphysema"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace procnode
