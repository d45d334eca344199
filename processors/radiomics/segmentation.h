// Regions from a DICOM Segmentation (PS3.3 A.51): each segment's frames placed onto a volume's
// grid. BINARY (1 bit, packed across frames), FRACTIONAL (a voxel belongs when its value is at
// least half of MaximumFractionalValue) and LABELMAP (the pixel value is the segment number)
// segmentations; any compression DCMTK decodes. The rule: a voxel of the grid belongs to a segment
// when its centre lies within half a frame spacing of one of the segment's frames (along the
// frames' normal) and the frame's pixel under it (nearest pixel centre) is set. So a SEG on the
// image's own grid gives exactly its pixels, and one on another grid is sampled at the image's
// voxel centres. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode::radiomics {

struct SegmentRegion {
  int number = 0;
  std::string label;                                   // SegmentLabel
  std::string code_value, code_scheme, code_meaning;   // Segmented Property Type
  std::string category_value, category_scheme, category_meaning;  // Segmented Property Category
  std::vector<uint8_t> voxels;                         // one per grid voxel, 1 inside
};

// Every segment of the SEG (the file's bytes) on `grid`, in segment-number order (a segment with
// no frame on the grid comes back empty). Error(kInvalidInput) naming the object and the reason
// (not a SEG, frames without a position or with differing orientations, pixel data shorter than
// its frames); Error(kUnsupported) for a transfer syntax DCMTK cannot decode.
// A SEG whose FrameOfReferenceUID differs from `frame_of_reference` (both given) segments another
// image: no segments.
std::vector<SegmentRegion> ReadSegmentation(const std::string& bytes, const std::string& name, const Volume& grid,
                                            const std::string& frame_of_reference = "");

}  // namespace procnode::radiomics
