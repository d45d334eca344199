// NIfTI-1 single-file images (NIfTI-1.1 standard, "n+1"): the header fields procnode sets, the
// quaternion form of an affine, serialisation to .nii bytes, optionally gzip-compressed, and the
// reader of such files (with the float Volume they hold).
//
// Conventions follow dcm2niix: 352-byte voxel offset (348-byte header + 4 zero extension bytes),
// qform_code = sform_code = 1 (scanner), xyzt_units = mm + s, little-endian. Pure; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/volume.h"

namespace procnode {

enum NiftiDatatype : int16_t {
  kDtUint8 = 2, kDtInt16 = 4, kDtInt32 = 8, kDtFloat32 = 16, kDtInt8 = 256, kDtUint16 = 512, kDtUint32 = 768, kDtFloat64 = 64,
};

int NiftiBitsPerVoxel(int16_t datatype);

struct NiftiImage {
  std::array<int64_t, 5> dims{1, 1, 1, 1, 1};       // x, y, z, t, (unused)
  int dimensions = 3;                                // dim[0]
  std::array<double, 4> pixdim{1, 1, 1, 0};          // x, y, z spacing (mm), t (s)
  int16_t datatype = kDtInt16;
  double scl_slope = 1, scl_inter = 0;
  std::array<std::array<double, 4>, 3> srow{};      // voxel -> RAS mm (sform)
  uint8_t dim_info = 0;
  uint8_t slice_code = 0;
  int16_t slice_start = 0, slice_end = 0;
  double slice_duration = 0;
  std::string descrip;                               // at most 79 characters; no PHI
  bool spatial = true;                               // false: qform/sform codes 0 (orientation unknown)
  std::string voxels;                                // x fastest, then y, z, t
};

struct Quatern {
  double b = 0, c = 0, d = 0, qfac = 1;
  std::array<double, 3> offset{0, 0, 0};
  std::array<double, 3> spacing{1, 1, 1};
};

// The qform parameters of an affine (NIfTI-1 mat44_to_quatern semantics).
Quatern AffineToQuatern(const std::array<std::array<double, 4>, 3>& srow);

// The 352-byte header and extension flag.
std::string NiftiHeaderBytes(const NiftiImage& image);
// Header + voxels; gzip-compressed when `gzip`: 1 MiB chunks compressed in parallel, one gzip
// member each (RFC 1952 2.2), which every gzip reader (zlib, Python, nibabel, FSL) reads as one file.
std::string NiftiFileBytes(const NiftiImage& image, bool gzip);
std::string Gzip(const std::string& bytes, int level = 6);
// Writes the file without an uncompressed copy of the voxels.
// Error(kUnavailable) naming the path when it cannot be written.
void WriteNiftiFile(const std::string& path, const NiftiImage& image, bool gzip);

// A single-file NIfTI-1 image (.nii, or .nii.gz of one or more gzip members), little-endian, with
// an sform and one of the datatypes above, as procnode and dcm2niix write them. Error(kInvalidInput)
// naming `name` and what is wrong (truncated, not NIfTI-1, big-endian, no sform, datatype);
// Error(kTooLarge) when gzip data inflates past `max_bytes`.
NiftiImage ParseNiftiBytes(const std::string& bytes, const std::string& name, std::size_t max_bytes = SIZE_MAX);
// Error(kUnavailable) naming the path when it cannot be read.
NiftiImage ReadNiftiFile(const std::string& path);
// The sform (voxel -> RAS mm) of a volume's grid (LPS directions, spacing and origin).
std::array<std::array<double, 4>, 3> VolumeAffine(const Volume& volume);

// The image as a float Volume in modality units (scl applied): spacing and directions from the
// sform (RAS -> LPS), time points stacked along z. What the pipeline's volume stage makes.
Volume VolumeFromNifti(const NiftiImage& image);

}  // namespace procnode
