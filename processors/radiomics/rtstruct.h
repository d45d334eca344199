// Regions from a DICOM RT Structure Set (PS3.3 A.19): the ROIs' closed planar contours, and their
// rasterisation onto a volume's grid. The rule (documented because every tool picks its own): a
// contour lies on the slice whose centre plane is nearest its points (they must lie within half a
// slice of it); a voxel belongs to the ROI when its centre is inside the contours of its slice by
// the even-odd rule, so a contour inside another is a hole; crossings are found on each row of
// voxel centres with half-open edges (a vertex on the row counts once). Pure; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode::radiomics {

struct StructureRoi {
  int number = 0;
  std::string name;
  std::string frame_of_reference_uid;  // the ROI's ReferencedFrameOfReferenceUID ("" when absent)
  std::vector<std::vector<std::array<double, 3>>> contours;  // CLOSED_PLANAR, LPS mm
};

// The ROIs of an RTSTRUCT (the file's bytes). Error(kInvalidInput) naming the object and what is
// wrong (not an RTSTRUCT, a contour with no points or an odd coordinate count); contours of other
// geometric types (POINT, OPEN_*) are skipped.
std::vector<StructureRoi> ReadStructureSet(const std::string& bytes, const std::string& name);

// One byte per voxel of `grid` (1 inside). Error(kInvalidInput) when a contour is not planar along
// one of the grid's axes or lies off the grid's slices.
std::vector<uint8_t> RasteriseRoi(const StructureRoi& roi, const Volume& grid);

}  // namespace procnode::radiomics
