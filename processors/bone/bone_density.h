// Vertebral trabecular attenuation on routine axial CT (the "bone-density" processor): the spinal
// column found without a trained model, a trabecular region of interest per vertebral body, levels
// named where the anatomy allows.
//
// Method (classical, per axial slice, in the patient's axes whatever the voxel order):
//  1. body: everything above -500 HU, largest component; bone: above `cortical_hu`.
//  2. spinal canal: a compact hole of the bone mask (40-800 mm2, mostly below 60 HU) within 50 mm of
//     the body's left-right centre with bone anterior to it (the vertebral body); the best one
//     anchors a track followed slice by slice up and down (holes within 12 mm of the previous
//     canal, closing the bone mask by 3 mm where the arch is open; gaps up to 25 mm bridged).
//  3. vertebral body per slice: the filled bone mask's component anterior to the canal (cut at the
//     canal's front edge, within 35 mm of its centre left and right); slices without one are disc.
//  4. bodies along the spine, between discs: slices without a body, and slices whose cross-section
//     looks least like a cortical ring around marrow (ring minus core attenuation, minus the core:
//     thin slices through a disc lose the ring, thick ones mix both end plates into a dense core),
//     local minima at least 15 mm apart and 40 HU below their surroundings; runs taller than
//     `max_body_mm` are split at their lowest value, runs shorter than `min_body_mm` dropped.
//  5. ROI (Comp2Comp's geometry): on the slices of a `slab_mm` slab at the body's cranio-caudal
//     middle, an ellipse centred at `roi_centre_fraction` of the body's anterior-posterior extent
//     from its posterior edge, `roi_ap_fraction` of that extent by `roi_width_fraction` of its width
//     (on the row through that centre),
//     intersected with the body eroded by `erosion_mm` so that cortical bone stays out. A body whose
//     slab holds a voxel above `metal_hu` is excluded (metal or dense material), and so is one whose
//     ROI is not enclosed by cortex on its slice (partial volume with a disc: more than a tenth of its
//     voxels do not see bone before fat or fluid in all four in-plane directions), or one cut by the
//     field of view.
//  6. levels: a body is rib-bearing where bone lies 55-120 mm lateral to the canal, from 30 mm
//     anterior to 60 mm posterior of it, on its slices or the disc above; the lowest rib-bearing body
//     above a rib-free one is T12, the highest below a rib-free one is T1; a body whose bone spans
//     more than `sacrum_span_mm` left to right is the sacrum (ala and ilium), and ends the column.
//     Two anchors that disagree (not twelve rib-bearing bodies, not five lumbar bodies above the
//     sacrum), or none, leave the levels concerned uncertain instead of guessed.
//
// Output labels: body i (top to bottom) is 2i+1, its ROI 2i+2 (at most 120 bodies).
// Errors: Error(kInvalidInput) naming the reason: not axial, slices thicker than `max_slice_mm`,
// no spinal column in the field of view; Error(kCancelled) when `stop_requested` turns true.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode::bone {

struct BoneParameters {
  double max_slice_mm = 5;
  double cortical_hu = 250;
  double slab_mm = 7.5;
  double roi_centre_fraction = 0.58;
  double roi_ap_fraction = 0.50;
  double roi_width_fraction = 0.65;
  double erosion_mm = 3;
  double metal_hu = 3000;
  double min_body_mm = 10;
  double max_body_mm = 36;
  double sacrum_span_mm = 130;
  double likely_hu = 110;     // at or below: "osteoporosis likely"
  double unlikely_hu = 160;   // above: "osteoporosis unlikely"; between: "DXA suggested"
};

struct VertebralBody {
  std::string level;             // "T1".."L5", or "" when uncertain
  std::string confidence;        // "high", "moderate" or "uncertain"
  std::string level_method;      // how the level was found, or why it is uncertain
  bool rib_left = false, rib_right = false;
  int top_slice = 0, bottom_slice = 0;  // its top and bottom slice, counted from the lowest slice up
  double centre_z_mm = 0;        // patient z (LPS) of its cranio-caudal middle
  double height_mm = 0;
  double body_ml = 0;
  // The trabecular ROI.
  std::size_t roi_voxels = 0;
  double roi_ml = 0, mean_hu = 0, median_hu = 0, sd_hu = 0;
  int roi_slices = 0;
  bool excluded = false;
  std::string exclusion;         // why it was not measured
  double roi_centre[3] = {0, 0, 0};  // voxel indices (i, j, k) of the ROI's centre, for key images
  bool RibBearing() const { return rib_left || rib_right; }
};

struct BoneResult {
  std::vector<VertebralBody> bodies;  // top to bottom, T1-L5 and bodies of uncertain level
  std::vector<uint8_t> labels;        // one per voxel: body i -> 2i+1, its ROI -> 2i+2
  int key_body = -1;                  // index of the key level (L1, else T12, else L2); -1: none
  std::string key_level, triage;      // "L1", "DXA suggested"
  bool sacrum_found = false;
  int cervical_bodies = 0;            // bodies above T1, not measured
  int canal_slices = 0;               // slices where the spinal canal was followed
  std::size_t sagittal_column = 0;    // voxel index i through the spinal canal, for a sagittal view
  std::vector<std::string> warnings;
};

struct BoneHooks {
  std::function<void(double fraction, const std::string& step)> progress;
  std::function<bool()> stop_requested;
};

// Throws Error(kInvalidInput) for the refusals above.
BoneResult MeasureBoneDensity(const Volume& ct, const BoneParameters& p, const BoneHooks& hooks = {});

// "osteoporosis likely" / "DXA suggested" / "osteoporosis unlikely" for a mean attenuation.
std::string TriageBand(double mean_hu, const BoneParameters& p);

// The result without labels, for the job's measurements.
nlohmann::json BoneResultJson(const BoneResult& r, const BoneParameters& p);

}  // namespace procnode::bone
