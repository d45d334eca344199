// Regions of interest from a NIfTI label image on the command line (procnode process --mask,
// procnode radiomics --masks): each non-zero label value a region "label N", on the grid of the
// series' volume. The mask must lie on the same voxel lattice (another tool's NIfTI of the series,
// in any axis order or direction); otherwise, or when it is empty or misses the series,
// Error(kInvalidInput) naming the file and the reason.
#pragma once

#include <string>
#include <vector>

#include "core/volume.h"
#include "processors/processor.h"

namespace procnode::cli {

std::vector<RegionMask> MaskRegions(const std::string& path, const Volume& volume);

}  // namespace procnode::cli
