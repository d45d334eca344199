// Series assembly, apart from any file format (as orthanc-neuro keeps DicomInstancesCollection
// apart from NiftiWriter): a DICOM series read into image planes (Slice): single-frame images,
// Siemens mosaics split into their slices (CSA geometry and slice timing), enhanced multi-frame
// objects expanded into frames (per-frame geometry and rescale, Philips precise scaling); split
// into parts (echoes, image components) as dcm2niix splits them; each part sorted along the slice
// normal (never by InstanceNumber), grouped into positions and time points (4D), checked for
// consistency, a gantry tilt corrected by resampling, and a 3D part whose slice spacing changes
// split into evenly spaced runs. nifti/ turns an arranged part into a NIfTI image and its sidecar.
//
// Inconsistent series are Error(kInvalidInput) naming the instance and what differs; a 4D series
// with a tilt or uneven spacing is Error(kUnsupported). Memory: a single-frame 3D acquisition whose
// source is cheap to read again may be read in two passes (headers now, pixels when placed:
// SeriesInfo::load_pixels), so the series is held once.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/study.h"
#include "dicom/ge_protocol.h"
#include "dicom/image.h"
#include "dicom/siemens_csa.h"
#include "processors/series_volume.h"
#include "volume/geometry.h"

class DcmDataset;

namespace procnode {

// The manufacturers whose private attributes conversion reads.
enum class Vendor { kOther, kSiemens, kGE, kPhilips, kUIH, kCanon };
Vendor VendorOf(const std::string& manufacturer);

// One image's diffusion weighting as its DICOM states it: the b-value (s/mm2) and, for a
// directional image, the unit gradient direction, in patient coordinates (LPS) or, where the
// vendor gives it so, in the image's own axes. An isotropic image (trace, ADC: PS3.3
// DiffusionDirectionality ISOTROPIC, or a b-value without a direction) has no direction.
struct DiffusionWeighting {
  enum class Frame { kPatient, kImage, kGE };  // kImage: UIH (row, column, normal); kGE: GE's own axes
  double b = 0;
  std::optional<Vec3> direction;
  Frame frame = Frame::kPatient;
  bool isotropic = false;   // said so by the DICOM (ISOTROPIC)
  bool from_bmatrix = false;  // the direction was derived from the b-matrix (its sign is unknown)
};

// One image plane at one time point, with what orders it and which part it belongs to.
struct Slice {
  DicomImage image;
  double key = 0;                      // position along the slice normal
  std::optional<double> timing_ms;     // acquisition time within the volume (Siemens mosaics)
  std::tuple<long, long, long> order;  // instance number, temporal position, frame: time order
  std::optional<double> echo;          // what splits echoes: EchoNumbers (classic) or echo time (enhanced)
  std::optional<double> echo_time_ms;  // EffectiveEchoTime (enhanced)
  std::string component;               // "", "ph", "real", "imaginary", "fieldmaphz"
  std::optional<DiffusionWeighting> diffusion;
  std::size_t instance = 0;            // index of its instance in the series
  bool deferred = false;               // samples not read yet (SeriesInfo::load_pixels reads them)
};

// What the first instance says about the whole series.
struct SeriesInfo {
  std::string name;
  bool mr_3d = false;
  std::string phase_direction;
  std::optional<double> repetition_time, tilt;
  bool mosaic = false;
  bool uih_grid = false;  // United Imaging: a volume's slices tiled in one image
  // A Siemens mosaic's slices follow the CSA SliceNormalVector, which may point against row x
  // column (sagittal mosaics, dcm2niix's "negative determinant"): its sign (+1 or -1).
  int mosaic_normal_sign = 1;
  std::optional<double> spacing_between_slices;  // (0018,0088): a single slice's third axis
  std::optional<double> ge_diffusion_directions;  // GE (0019,10E0): 0 for a trace (non-tensor) series
  // GE's slice timing as dcm2niix models it (GE writes no times): from the protocol block
  // (0025,101B: SLICEORDER, MBACCEL, DELACQNOAV, IOPT), the HyperBand factor ((0043,10B6) or
  // MBACCEL), the group delay ((0043,107C) for fMRI, the block's for multi-phase EPI, whose TR it
  // lengthens), the software version; absent for diffusion (its gradient cycling is unknown), for
  // series dcm2niix gives no times, and for other vendors.
  struct GeSliceOrder {
    bool interleaved = false;
    int multiband = 1;
    double tr_ms = 0, delay_ms = 0;
    GeSoftwareVersion software;
  };
  std::optional<GeSliceOrder> ge_slice_order;
  Vendor vendor = Vendor::kOther;
  std::optional<SiemensCsa> csa;
  bool csa_diffusion = false;  // the first instance's CSA header has a b-value: each instance's is read
  // Reads a deferred slice's samples (and max_sample) from its instance again.
  std::function<void(Slice&)> load_pixels;
  bool defer_pixels = false;
};

struct SeriesSlices {
  SeriesInfo info;
  std::vector<Slice> slices;            // every image plane of every instance, in instance order
  std::vector<SourceInstance> sources;  // the series' instances (SOP class and instance UIDs, geometry)
  int series_number = 0;
  std::string description;              // SeriesDescription (for file names only)
};

// Reads every instance of `series` into slices: the first (which describes the series; then
// `first_instance` sees its dataset and what was read from it), then the others in parallel.
// Progress counts one step per instance (two where pixels are read later). `source`, `series` and
// `callbacks` must outlive the slices (deferred pixels are read through them).
SeriesSlices ReadSeriesSlices(StudySource& source, const SeriesRef& series, const LoadCallbacks& callbacks,
                              const std::function<void(DcmDataset& first, const SeriesInfo& info)>& first_instance);

// One part of a series: an echo and image component, with dcm2niix's suffix ("_e2", "_ph",
// "_e2_fieldmaphz"; empty when the series has one part).
struct SlicePart {
  std::string suffix;
  std::vector<Slice> slices;
};

// The parts in order of first appearance (dcm2niix's _e1, _e2, _ph, _fieldmaphz files).
std::vector<SlicePart> SplitParts(std::vector<Slice> slices);

// A part arranged for output: slices sorted along the normal, `positions` positions of `volumes`
// time points each (position p's volumes at slices[position_starts[p] + t]), evenly spaced.
struct ArrangedPart {
  std::vector<Slice> slices;
  std::vector<std::size_t> position_starts;
  std::size_t positions = 0, volumes = 0;
  double slice_spacing = 1;                // signed, along `normal`
  Vec3 row_dir{}, col_dir{}, normal{};     // LPS direction cosines
  std::vector<std::string> warnings;       // tilt corrected, spacing split
  std::string suffix;                      // "_part2" for a run of a split part
  bool spacing_split = false;              // one of several evenly spaced runs
  bool geometry_assumed = false;           // no image had ImagePositionPatient or ImageOrientationPatient
};

// Sorts, groups and checks one part; corrects a gantry tilt; splits a 3D part whose spacing changes
// into evenly spaced runs (one ArrangedPart each; most parts give one).
std::vector<ArrangedPart> ArrangePart(std::vector<Slice> slices, const SeriesInfo& info);

// Reads the samples of every deferred slice, in parallel.
void LoadDeferred(std::vector<Slice>& slices, const SeriesInfo& info);

// A slice's samples replaced by float32 in modality units (rescale applied), for series whose
// rescale varies from slice to slice.
void ToModalityFloat(DicomImage& image);

}  // namespace procnode
