// DICOM Segmentation (PS3.3 A.51, binary) from a label volume, through DCMTK dcmseg: one segment
// per entry of `segments` (each a set of label values, so overlapping segments such as "right
// lung" = {1, 3} and "emphysema" = {3, 4} are both whole), frames on the source instances' own
// planes (sampled from the volume by nearest voxel), each frame referencing its source instance
// (Derivation Image, purpose 121322 "Source image for image processing operation") and placed by
// a dimension index (segment number, then position). Empty frames are left out; a segment with no
// voxel at all is left out and said in `omitted`. Same Frame of Reference, study and patient as
// the source. Needs single-frame sources with geometry; otherwise Error(kUnsupported). Errors from
// DCMTK are Error(kInternal) naming what failed. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/coded.h"
#include "core/volume.h"
#include "processors/series_volume.h"

namespace procnode {

struct SegmentDefinition {
  std::string label;                 // Segment Label, e.g. "Right lung"
  Code category, type;               // CID 7150 / CID 7151
  std::vector<int> label_values;     // voxel values of the label volume in this segment
  std::array<int, 3> rgb{255, 0, 0}; // recommended display colour
};

struct SegmentationSpec {
  StudyIdentity study;
  std::string series_instance_uid, sop_instance_uid;
  int series_number = 9002;
  std::string series_description;
  std::string source_series_instance_uid;
  std::vector<SourceInstance> sources;  // the source series' instances
  std::string algorithm_name, algorithm_version, software_version;
  std::vector<SegmentDefinition> segments;
};

struct SegmentationResult {
  std::string dicom;                  // Part 10 bytes
  std::vector<int> segment_numbers;   // per entry of spec.segments: its Segment Number, 0 when omitted
  std::vector<std::string> omitted;   // labels of segments without voxels
  std::size_t frames = 0;
};

SegmentationResult MakeSegmentation(const SegmentationSpec& spec, const Volume& volume, const std::vector<uint8_t>& labels);

}  // namespace procnode
