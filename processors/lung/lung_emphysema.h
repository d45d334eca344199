// Lung segmentation and emphysema quantification on chest CT (the "lung-emphysema" processor).
//
// Method (threshold and connectivity based, in the tradition of Hu, Hoffman & Reinhardt, IEEE TMI
// 2001, and the densitometry of Gevenois 1996 / Mishima 1999):
//  1. air: HU below `air_threshold_hu`; outside air: air connected in its slice to the image border;
//     body: the largest 3D component of everything else (the table falls away); lung fields: air
//     inside the body.
//  2. trachea and main bronchi: found in the upper slices as a central, round air cross-section,
//     followed slice by slice downwards; a cross-section larger than `airway_max_area_mm2` (or
//     growing more than threefold) has met the lung: there the branch follows its lumen (air below
//     `airway_lumen_hu`) until that too spreads to lung size; branches end `bronchus_length_mm`
//     below the carina. They are removed from the lung fields.
//  3. lung components: large (at least a tenth of the largest) and reaching within 60 mm of the
//     largest one's apex (so bowel gas is never lung). Two components are sided by the patient x
//     of their centroids (LPS: left is +x); one component (lungs touching at the anterior or
//     posterior junction) is eroded in-plane until it splits in two, and the parts are grown
//     back into it (geodesically), so the boundary follows the junction line.
//  4. vessels and airway walls: per-slice holes of each lung are filled (`fill_holes`); the
//     accurate variant first closes each lung in-plane by `closing_mm`, bringing juxtapleural
//     vessels and nodules into the lung field.
//  5. measurements, per lung and total: volume (mL), mean lung density (HU), LAA% below
//     `emphysema_threshold_hu` (-950) and below `laa2_threshold_hu` (-910), the 15th percentile
//     density (HU, 1 HU bins), emphysema clusters (3D face-connected low-attenuation regions) and
//     the cluster-size exponent D (least-squares slope of log cumulative cluster count against
//     log cluster size; undefined with fewer than 3 distinct sizes). Densitometry optionally runs
//     on an in-plane Gaussian-smoothed copy (`smoothing_mm`): sharp (lung) kernels have more
//     noise, so LAA%-950 reads higher on them than on a standard kernel; smoothing by about 1 mm
//     narrows that gap at the cost of small emphysematous regions.
//
// Output labels: 1 right lung, 2 left lung, 3 emphysema in the right lung, 4 emphysema in the left
// lung (a lung is its own label plus its emphysema label).
// Errors: Error(kInvalidInput) naming the reason for a volume that is not an axial CT in HU, or
// has no lung fields; Error(kCancelled) when `stop_requested` turns true between steps.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/volume.h"
#include "processors/lung/lung_backend.h"

namespace procnode::lung {

struct LungParameters {
  std::string variant = "fast";          // "fast" or "accurate" (adds the in-plane closing)
  double air_threshold_hu = -500;
  double emphysema_threshold_hu = -950;
  double laa2_threshold_hu = -910;
  double percentile = 15;
  double airway_max_area_mm2 = 700;
  double bronchus_length_mm = 40;
  double airway_lumen_hu = -950;          // where an airway runs into the lung, its lumen is followed below this
  bool fill_holes = true;
  double closing_mm = 3;                  // accurate variant only
  double smoothing_mm = 0;                // Gaussian sigma for densitometry; 0: none
};

struct LungMeasures {
  uint64_t voxels = 0;
  double volume_ml = 0, mean_hu = 0, laa_percent = 0, laa2_percent = 0, percentile_hu = 0;
  uint64_t emphysema_voxels = 0;
  double emphysema_ml = 0;
  uint64_t clusters = 0;
  double cluster_exponent = 0;
  bool cluster_exponent_defined = false;
};

struct AirwayTrack {
  bool found = false;
  int top_slice = -1, carina_slice = -1, last_slice = -1;
  std::array<double, 2> trachea_at_carina{0, 0};  // voxel x, y of the trachea's centroid just above the carina
  double removed_ml = 0;
};

struct LungResult {
  std::vector<uint8_t> labels;  // 0..4, as the volume's voxels
  LungMeasures right, left, total;
  std::array<std::vector<uint64_t>, 2> histograms;  // right, left: kHistogramBins each
  AirwayTrack airway;
  bool split_at_junction = false;
  int junction_erosions = 0;
  std::vector<std::string> warnings;
  std::string device, device_note;
  nlohmann::json timings_ms = nlohmann::json::object();
};

struct LungCallbacks {
  std::function<void(double fraction, const std::string& step)> progress;  // optional
  std::function<bool()> stop_requested;                                    // optional
};

LungResult SegmentLungsAndQuantify(const Volume& ct, const LungParameters& parameters, LungBackend& backend,
                                   const LungCallbacks& callbacks = {});

// Measurements (no voxels) as recorded on the job and written to measurements.json.
nlohmann::json LungResultJson(const LungResult& result);

}  // namespace procnode::lung
