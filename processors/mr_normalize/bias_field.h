// N4 bias-field correction (Tustison et al. 2010, IEEE TMI 29:1310-1320) through ITK's
// N4BiasFieldCorrectionImageFilter, the filter ANTs' N4BiasFieldCorrection runs. The estimate is
// made on a shrunk copy of the image (the field is smooth: a shrink factor of 4 loses nothing of
// it, and N4's cost falls with the voxel count), then its B-spline control-point lattice is
// evaluated at full resolution, so the correction of every voxel comes from the same smooth field.
// The field is scaled to a mean of 1 within the mask, so the corrected image keeps the input's
// intensity range. This header holds no ITK type: ITK stays in bias_field.cc (the optional target
// procnode_processors_itk). Thread-safe; ITK's own threads do the work.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode::mr {

struct BiasFieldParameters {
  int shrink_factor = 4;            // per axis; an axis keeps at least 16 voxels
  int levels = 3;                   // B-spline fitting levels (each doubles the control-point mesh)
  int iterations = 50;              // at most, per level
  double convergence = 0.001;       // N4's convergence threshold
  double spline_distance_mm = 200;  // control-point spacing of the first level
  double fwhm = 0.15;               // the bias field's histogram deconvolution kernel (N4's default)
  int histogram_bins = 200;
};

struct BiasFieldHooks {
  std::function<void(double fraction, const std::string& step)> progress;  // optional
  std::function<bool()> stop_requested;                                    // optional: Error(kCancelled)
};

struct BiasField {
  std::vector<float> field;      // multiplicative, one per voxel; mean 1 within the mask
  double minimum = 0, maximum = 0;  // of the field within the mask
  std::array<std::size_t, 3> shrunk_dims{0, 0, 0};
  std::vector<int> iterations;   // run per level
  double seconds = 0;
};

// Estimates the field of `volume` within `mask` (one byte per voxel, non-zero inside). Voxels at or
// below 0 are left out of the estimate. Error(kInvalidInput) for a mask with too few voxels or bad
// parameters, Error(kProcessorFailed) with ITK's text when ITK fails, Error(kCancelled) on request.
BiasField EstimateBiasField(const Volume& volume, const std::vector<uint8_t>& mask, const BiasFieldParameters& parameters,
                            const BiasFieldHooks& hooks = {});

// The input divided by the field, voxel by voxel.
std::vector<float> CorrectBias(const std::vector<float>& values, const std::vector<float>& field);

}  // namespace procnode::mr
