// One DICOM series (assembled by volume/series_slices.h) to one NIfTI-1 image and its JSON
// sidecar, as dcm2niix (v1.0.20220720) writes them by default.
//
// Geometry (dcm2niix conventions): slices sorted along the slice normal (row x column direction
// cosines, PS3.3 C.7.6.2.1.1), never by InstanceNumber; rows flipped so the first NIfTI row is the
// last DICOM row (dcm2niix's default -y flip); affine in RAS (LPS x and y negated); 3D MR
// acquisitions (MRAcquisitionType 3D) rotated to the nearest orthogonal RAS orientation, as
// dcm2niix does unless "-x i". Repeated positions make a 4D series (volumes in InstanceNumber
// order). Voxels keep their stored values; Rescale Slope/Intercept go to scl_slope/scl_inter
// (float32 with scaling applied when they vary across slices). Unsigned 16-bit data is written as
// uint16, or int16 where fewer than 16 bits are stored (dcm2niix's default "-l o").
//
// Siemens mosaics are split into their slices (CSA header geometry and slice timing); enhanced
// multi-frame objects (PS3.3 C.7.6.16) into frames with per-frame geometry and rescale; Philips
// values get dcm2niix's "precise" scaling (-p y). Never written with wrong geometry: a gantry tilt
// is corrected by resampling onto an orthogonal grid, and a 3D series whose slice spacing changes
// is split into evenly spaced parts ("_part1", ...), each said in `warnings` and in the sidecar's
// ConversionWarnings; a 4D series with either is Error(kUnsupported). Inconsistent series are
// Error(kInvalidInput) naming the instance and what differs.
// The sidecar holds acquisition parameters only: no names, IDs, dates, times, institutions,
// stations, serial numbers or free-text comments.
// Memory: about one volume in all, the decoded images giving way to the output as they are copied
// into it (see README.md). A rotated 3D acquisition from a source that is cheap to read again
// (StudySource::RereadIsCheap) is read in two passes, headers then pixels, and progress then
// counts two steps per instance.
#pragma once

#include <nlohmann/json.hpp>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/study.h"
#include "nifti/nifti1.h"
#include "processors/series_volume.h"

namespace procnode {

// A diffusion series' gradient table as dcm2niix writes it beside the image (FSL's .bval and
// .bvec): one b-value (s/mm2) and one unit vector per volume, the vector in the image's voxel
// axes (as the image is written: rows flipped, slices along the normal), so FSL and MRtrix read
// it without further rotation. An isotropic series (trace, ADC) has b-values only.
struct DiffusionGradients {
  std::vector<double> bvals;
  std::vector<std::array<double, 3>> bvecs;  // empty when every volume is isotropic
};

// dcm2niix's text (values as %g of single-precision numbers, space separated, one line per
// row): .bval one line, .bvec three lines (x, y and z of every volume).
std::string BvalText(const DiffusionGradients& gradients);
std::string BvecText(const DiffusionGradients& gradients);

struct NiftiConversion {
  NiftiImage image;
  nlohmann::json sidecar;
  std::vector<std::string> warnings;
  int series_number = 0;
  std::string series_description;  // for file names only
  std::string suffix;              // dcm2niix's: "_e2", "_ph", "_e2_fieldmaphz"; empty for a single part
  std::vector<SourceInstance> sources;  // the series' instances (SOP class and instance UIDs)
  // Diffusion series: the gradient table (see DiffusionGradients). A series with derived
  // isotropic volumes (Philips and GE trace/ADC) gives two parts as dcm2niix does: the
  // diffusion-weighted volumes alone (with the table), and every volume, derived ones last, with
  // the suffix "_ADC".
  std::optional<DiffusionGradients> gradients;
};

// One conversion per part of the series: echoes and image components (magnitude, phase, real,
// imaginary, field map) are split into separate images, as dcm2niix splits them, in order of
// first appearance. Most series have one part.
std::vector<NiftiConversion> ConvertSeriesToNifti(StudySource& source, const SeriesRef& series,
                                                  const LoadCallbacks& callbacks = {});

// The pipeline's volume stage: the series through the converter (so processors see exactly the
// geometry and values the NIfTI gets), as a float Volume in modality units (scl applied), with the
// study identity of its first instance (PHI, kept in memory for result objects) and its sources.
// A series of several parts yields its first part, said in `warnings`.
SeriesVolume NiftiSeriesVolume(StudySource& source, const SeriesRef& series, const LoadCallbacks& callbacks = {});

// A uint8 label image on a volume's grid (as NiftiSeriesVolume made it): the same affine as the
// series' NIfTI, so viewers overlay it. Error(kInvalidInput) when the sizes differ.
NiftiImage LabelNiftiImage(const Volume& geometry, const std::vector<uint8_t>& labels);

// A float32 image on a volume's grid, with the same affine (a derived image: the corrected MR).
NiftiImage FloatNiftiImage(const Volume& geometry, const std::vector<float>& values, const std::string& description);

// "<series number>_<description><suffix>" with every character outside [A-Za-z0-9._-] replaced by '_'.
std::string NiftiFileStem(const NiftiConversion& conversion);

}  // namespace procnode
