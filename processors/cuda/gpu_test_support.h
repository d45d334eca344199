// What the GPU parity tests share, in the normal build and in the GPU check kit
// (scripts/gpu-kit.sh): the chest CT volume (from the shared DICOM through the converter, or in
// the kit from the NIfTI file the kit carries, PROCNODE_GPU_KIT_DATA/chest-<kernel>.nii.gz, so the
// kit needs no DCMTK), and whether a missing GPU fails the test (the kit's run.sh sets
// PROCNODE_GPU_REQUIRED=1: there a GPU test must run, never skip) or skips it (development, CI).
// PROCNODE_GPU_KIT_SMALL=1 keeps to the small grids (for compute-sanitizer, whose tools are slow).
#pragma once

#include <cstdlib>
#include <string>

#include "core/volume.h"
#if PROCNODE_GPU_KIT
#include "nifti/nifti1.h"
#else
#include "dicom/folder_source.h"
#include "nifti/series_to_nifti.h"
#endif

namespace procnode::gpu_test {

inline bool EnvFlag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string(value) == "1";
}

inline bool GpuRequired() { return EnvFlag("PROCNODE_GPU_REQUIRED"); }
inline bool SmallOnly() { return EnvFlag("PROCNODE_GPU_KIT_SMALL"); }

// "lung-kernel" or "standard-kernel": the shared chest CT as the pipeline's volume stage gives it.
inline Volume ChestCt(const std::string& kernel) {
#if PROCNODE_GPU_KIT
  const char* data = std::getenv("PROCNODE_GPU_KIT_DATA");
  Volume v = VolumeFromNifti(ReadNiftiFile(std::string(data ? data : "data") + "/chest-" + kernel + ".nii.gz"));
  v.modality = "CT";
  v.units = "HU";
  return v;
#else
  FolderStudySource source(std::string(PROCNODE_SHARED_DATA) + "/ct-chest-lung-dx-a0001/" + kernel);
  return NiftiSeriesVolume(source, LargestInputSeries(source.ListSeries(""))).volume;
#endif
}

}  // namespace procnode::gpu_test

// Skips the test with `reason` (development and CI machines), or fails it where a GPU is required.
#define PROCNODE_GPU_SKIP_OR_FAIL(reason)                                       \
  do {                                                                          \
    if (::procnode::gpu_test::GpuRequired()) FAIL() << "GPU required: " << (reason); \
    GTEST_SKIP() << (reason);                                                   \
  } while (false)
