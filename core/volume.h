// An image volume in modality units (rescale slope and intercept applied), with its geometry in
// DICOM patient coordinates (LPS, millimetres). Voxels are float32, x fastest, then y, then z;
// voxel (i, j, k) lies at origin + i*spacing[0]*row_direction + j*spacing[1]*column_direction +
// k*spacing[2]*slice_direction (the pipeline's volumes come from the NIfTI converter, so their
// axes are the NIfTI image's).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace procnode {

struct Volume {
  std::array<std::size_t, 3> dims{0, 0, 0};     // columns, rows, slices
  std::array<double, 3> spacing{1, 1, 1};       // mm: column step, row step, slice step
  std::array<double, 3> origin{0, 0, 0};        // centre of the first voxel (LPS mm)
  std::array<double, 3> row_direction{1, 0, 0};
  std::array<double, 3> column_direction{0, 1, 0};
  std::array<double, 3> slice_direction{0, 0, 1};
  std::string modality;                          // (0008,0060)
  std::string units;                             // "HU" for CT, otherwise "" (arbitrary)
  std::vector<float> voxels;

  std::size_t VoxelCount() const { return dims[0] * dims[1] * dims[2]; }
};

}  // namespace procnode
