#include "results/key_images.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace procnode {
namespace {

void PutU32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void Chunk(std::string& png, const char* type, const std::string& data) {
  PutU32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  PutU32(png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

namespace {

// The display axes of a plane: horizontal is voxel x (axial, coronal: patient right on the left)
// or y (sagittal: anterior on the left); vertical is y (axial: anterior up) or z (superior up).
struct PlaneAxes {
  int horizontal = 0, vertical = 1, normal = 2;
  bool flip_h = false, flip_v = false;
};

PlaneAxes AxesOf(const Volume& v, ViewPlane plane) {
  PlaneAxes a;
  const std::array<std::array<double, 3>, 3> dirs{v.row_direction, v.column_direction, v.slice_direction};
  if (plane == ViewPlane::kAxial) {
    a = {0, 1, 2};
    a.flip_v = dirs[1][1] < 0;
  } else if (plane == ViewPlane::kCoronal) {
    a = {0, 2, 1};
    a.flip_v = dirs[2][2] > 0;
  } else {
    a = {1, 2, 0};
    a.flip_h = dirs[1][1] < 0;
    a.flip_v = dirs[2][2] > 0;
    return a;
  }
  a.flip_h = dirs[0][0] < 0;
  return a;
}

}  // namespace

std::array<double, 2> KeyImagePosition(const Volume& v, const KeyImageSpec& spec, const std::array<double, 3>& voxel) {
  const PlaneAxes a = AxesOf(v, spec.plane);
  const double nh = static_cast<double>(v.dims[a.horizontal]), nv = static_cast<double>(v.dims[a.vertical]);
  double h = (voxel[a.horizontal] + 0.5) / nh, vert = (voxel[a.vertical] + 0.5) / nv;
  if (a.flip_h) h = 1 - h;
  if (a.flip_v) vert = 1 - vert;
  return {h, vert};
}

RgbImage RenderKeyImage(const Volume& v, const std::vector<uint8_t>& labels, const KeyImageSpec& spec) {
  if (!labels.empty() && labels.size() != v.VoxelCount()) throw Error(ErrorCode::kInvalidInput, "key image: labels do not match the volume");
  const PlaneAxes a = AxesOf(v, spec.plane);
  const std::size_t depth = v.dims[a.normal];
  if (spec.index >= depth) {
    throw Error(ErrorCode::kInvalidInput, "key image: index " + std::to_string(spec.index) + " outside 0.." + std::to_string(depth - 1));
  }
  const std::size_t horizontal_count = v.dims[a.horizontal], vertical_count = v.dims[a.vertical];
  const double horizontal_spacing = std::abs(v.spacing[a.horizontal]), vertical_spacing = std::abs(v.spacing[a.vertical]);
  const std::array<std::size_t, 3> stride{1, v.dims[0], v.dims[0] * v.dims[1]};
  RgbImage image;
  image.width = static_cast<int>(horizontal_count);
  image.height = std::max(1, static_cast<int>(std::lround(vertical_count * vertical_spacing / horizontal_spacing)));
  image.rgb.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  const double low = spec.window_centre - spec.window_width / 2;
  auto voxel_at = [&](int col, int row) -> std::size_t {
    const std::size_t h = a.flip_h ? horizontal_count - 1 - col : col;
    auto r = static_cast<std::size_t>(std::min<double>(vertical_count - 1, (row + 0.5) * vertical_count / image.height));
    if (a.flip_v) r = vertical_count - 1 - r;
    return h * stride[a.horizontal] + r * stride[a.vertical] + spec.index * stride[a.normal];
  };
  auto label_at = [&](int col, int row) -> int {
    if (labels.empty() || col < 0 || row < 0 || col >= image.width || row >= image.height) return 0;
    return labels[voxel_at(col, row)];
  };
  for (int row = 0; row < image.height; ++row) {
    for (int col = 0; col < image.width; ++col) {
      const std::size_t i = voxel_at(col, row);
      const double grey = std::clamp((v.voxels[i] - low) / spec.window_width, 0.0, 1.0) * 255.0;
      std::array<double, 3> pixel{grey, grey, grey};
      const int label = label_at(col, row);
      for (const auto& colour : spec.colours) {
        if (colour.label != label || label == 0) continue;
        if (spec.outline && label_at(col - 1, row) == label && label_at(col + 1, row) == label &&
            label_at(col, row - 1) == label && label_at(col, row + 1) == label) {
          continue;
        }
        const double a = spec.outline ? 1.0 : colour.opacity;
        for (int c = 0; c < 3; ++c) pixel[c] = (1 - a) * pixel[c] + a * colour.rgb[c];
      }
      uint8_t* out = &image.rgb[(static_cast<std::size_t>(row) * image.width + col) * 3];
      for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(std::lround(pixel[c]));
    }
  }
  return image;
}

std::vector<LabelColour> LabelPalette(int count) {
  static const std::array<std::array<uint8_t, 3>, 4> kColours{{{40, 120, 255}, {30, 200, 90}, {255, 220, 0}, {255, 120, 0}}};
  std::vector<LabelColour> out;
  for (int label = 1; label <= count; ++label) {
    out.push_back({label, kColours[(label - 1) % kColours.size()], label <= 2 ? 0.35 : 0.8});
  }
  return out;
}

std::size_t BusiestIndex(const Volume& v, const std::vector<uint8_t>& labels, ViewPlane plane) {
  const std::size_t nx = v.dims[0], ny = v.dims[1];
  const int axis = plane == ViewPlane::kAxial ? 2 : plane == ViewPlane::kCoronal ? 1 : 0;
  std::vector<std::size_t> counts(v.dims[axis], 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i]) ++counts[axis == 2 ? i / (nx * ny) : axis == 1 ? (i / nx) % ny : i % nx];
  }
  const auto best = std::max_element(counts.begin(), counts.end());
  return *best == 0 ? counts.size() / 2 : static_cast<std::size_t>(best - counts.begin());
}

std::string EncodePng(const RgbImage& image) {
  const std::size_t stride = static_cast<std::size_t>(image.width) * 3;
  std::string raw;
  raw.reserve((stride + 1) * image.height);
  for (int row = 0; row < image.height; ++row) {
    raw.push_back(0);  // filter: none
    raw.append(reinterpret_cast<const char*>(&image.rgb[row * stride]), stride);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string deflated(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(deflated.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                static_cast<uLong>(raw.size()), 6) != Z_OK) {
    throw Error(ErrorCode::kInternal, "PNG: zlib compression failed");
  }
  deflated.resize(size);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  PutU32(header, static_cast<uint32_t>(image.width));
  PutU32(header, static_cast<uint32_t>(image.height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, no filter method, no interlace
  Chunk(png, "IHDR", header);
  Chunk(png, "IDAT", deflated);
  Chunk(png, "IEND", "");
  return png;
}

}  // namespace procnode
