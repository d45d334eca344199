// Key images: a slice of a CT or MR volume with a label overlay, in radiological display
// orientation (patient right on the image's left; axial: anterior up; coronal: superior up;
// slices resampled to square pixels), as 8-bit RGB, and PNG encoding (zlib, no other library).
// Pure and thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/volume.h"

namespace procnode {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
};

enum class ViewPlane { kAxial, kCoronal, kSagittal };

struct LabelColour {
  int label = 0;
  std::array<uint8_t, 3> rgb{255, 0, 0};
  double opacity = 0.4;
};

struct KeyImageSpec {
  ViewPlane plane = ViewPlane::kAxial;
  std::size_t index = 0;         // voxel index along the plane's normal axis (slice; row for coronal; column for sagittal)
  double window_centre = -600;   // lung window
  double window_width = 1500;
  std::vector<LabelColour> colours;
  bool outline = false;          // true: label outlines only
};

// Colours for labels 1..count: blue, green, yellow, orange, then repeating.
std::vector<LabelColour> LabelPalette(int count);

// The index (slice for axial, row for coronal) holding the most labelled voxels; the middle when none.
std::size_t BusiestIndex(const Volume& volume, const std::vector<uint8_t>& labels, ViewPlane plane);

// `labels` empty or one per voxel. Error(kInvalidInput) when the index is outside the volume.
RgbImage RenderKeyImage(const Volume& volume, const std::vector<uint8_t>& labels, const KeyImageSpec& spec);

// Where voxel (i, j, k) falls on a rendered image, as fractions of its width and height from the
// top left (the voxel's position along the plane's normal is ignored).
std::array<double, 2> KeyImagePosition(const Volume& volume, const KeyImageSpec& spec, const std::array<double, 3>& voxel);

// The PNG (8-bit RGB) bytes of an image.
std::string EncodePng(const RgbImage& image);

}  // namespace procnode
