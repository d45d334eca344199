#include "processors/bone/bone_density.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <cstdlib>
#include <new>

#include "core/huge_pages.h"
#include "core/error.h"
#include "core/format.h"

namespace procnode::bone {
namespace {

constexpr double kAxialToleranceDegrees = 20;
constexpr float kBodyHu = 150;       // a vertebral body's outline: cortex and dense marrow
constexpr double kOpeningMm = 2.5;   // contacts thinner than this (aorta, rib heads) are cut
constexpr double kBodyHalfWidthMm = 35;  // a vertebral body lies within this of the canal's centre, left and right
constexpr double kMinColumnMm = 50;
constexpr float kEnclosureBoneHu = 170;   // cortex as thin cortex reads on thick slices, smoothed
constexpr float kEnclosureOutsideHu = 20;
constexpr double kMaxOpenShare = 0.10;   // more of the ROI outside a cortical ring: not measured   // a spinal canal followed over less is not a spine to measure
constexpr double kDiscSpacingMm = 15;  // discs closer than this are one
constexpr double kDiscProminence = 40; // HU: how far a disc's ringness dips below its surroundings
constexpr double kPi = 3.14159265358979323846;

// The volume seen in the patient's axes: X to the patient's left (LPS +x), Y posterior (+y), Z
// superior (+z), whatever order and signs the voxel axes have. Only strides: no copy.
struct Grid {
  int nx = 0, ny = 0, nz = 0;
  double sx = 1, sy = 1, sz = 1;  // mm
  int64_t base = 0, stx = 0, sty = 0, stz = 0;
  int voxel_axis[3] = {0, 1, 2};  // the voxel axis behind each patient axis
  bool reversed[3] = {false, false, false};
  std::size_t At(int x, int y, int z) const { return static_cast<std::size_t>(base + x * stx + y * sty + z * stz); }
  // Voxel index along the volume's own axis `a` of patient-axis coordinate `u`.
  double VoxelIndex(int patient_axis, double u, const Volume& v) const {
    const int a = voxel_axis[patient_axis];
    return reversed[patient_axis] ? static_cast<double>(v.dims[a]) - 1 - u : u;
  }
};

Grid PatientGrid(const Volume& v) {
  const std::array<std::array<double, 3>, 3> dirs{v.row_direction, v.column_direction, v.slice_direction};
  const std::array<int64_t, 3> strides{1, static_cast<int64_t>(v.dims[0]), static_cast<int64_t>(v.dims[0] * v.dims[1])};
  int dominant[3];
  for (int a = 0; a < 3; ++a) {
    dominant[a] = 0;
    for (int c = 1; c < 3; ++c) {
      if (std::abs(dirs[a][c]) > std::abs(dirs[a][dominant[a]])) dominant[a] = c;
    }
  }
  const double tilt = std::acos(std::min(1.0, std::abs(dirs[2][2]))) * 180 / kPi;
  if (dominant[2] != 2 || tilt > kAxialToleranceDegrees || dominant[0] == dominant[1]) {
    throw Error(ErrorCode::kInvalidInput, "bone-density: the series is not axial (its slices are " + FormatNumber("%.0f", tilt) +
                                              " degrees from the axial plane; at most " +
                                              FormatNumber("%.0f", kAxialToleranceDegrees) + " accepted)");
  }
  Grid g;
  int* n[3] = {&g.nx, &g.ny, &g.nz};
  double* s[3] = {&g.sx, &g.sy, &g.sz};
  int64_t* st[3] = {&g.stx, &g.sty, &g.stz};
  for (int a = 0; a < 3; ++a) {
    const int c = dominant[a];
    *n[c] = static_cast<int>(v.dims[a]);
    *s[c] = std::abs(v.spacing[a]);
    const bool negative = (dirs[a][c] < 0) != (v.spacing[a] < 0);
    g.voxel_axis[c] = a;
    g.reversed[c] = negative;
    *st[c] = negative ? -strides[a] : strides[a];
    if (negative) g.base += static_cast<int64_t>(v.dims[a] - 1) * strides[a];
  }
  return g;
}

// A 2D chamfer distance (mm) from every pixel inside `mask` to the nearest pixel outside it (0
// outside). Beyond the image border counts as outside when `border_outside`, else as inside.
std::vector<float> InsideDistance(const std::vector<uint8_t>& mask, int w, int h, double sx, double sy, bool border_outside) {
  const float big = 1e9f, dx = static_cast<float>(sx), dy = static_cast<float>(sy), dd = std::sqrt(dx * dx + dy * dy);
  const float beyond = border_outside ? 0.0f : big;
  std::vector<float> d(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) d[i] = mask[i] ? big : 0.0f;
  auto get = [&](int x, int y) { return x < 0 || y < 0 || x >= w || y >= h ? beyond : d[static_cast<std::size_t>(y) * w + x]; };
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      float& v = d[static_cast<std::size_t>(y) * w + x];
      if (v == 0) continue;
      v = std::min({v, get(x - 1, y) + dx, get(x, y - 1) + dy, get(x - 1, y - 1) + dd, get(x + 1, y - 1) + dd});
    }
  }
  for (int y = h - 1; y >= 0; --y) {
    for (int x = w - 1; x >= 0; --x) {
      float& v = d[static_cast<std::size_t>(y) * w + x];
      if (v == 0) continue;
      v = std::min({v, get(x + 1, y) + dx, get(x, y + 1) + dy, get(x + 1, y + 1) + dd, get(x - 1, y + 1) + dd});
    }
  }
  return d;
}

// Closing by `radius_mm`: dilation then erosion, by chamfer distances; the image border neither
// dilates nor erodes.
// Dilation by `radius_mm` (chamfer distance to the mask); the image border does not dilate.
std::vector<uint8_t> Dilate(const std::vector<uint8_t>& mask, int w, int h, double sx, double sy, double radius_mm) {
  std::vector<uint8_t> inverse(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) inverse[i] = !mask[i];
  const std::vector<float> to_mask = InsideDistance(inverse, w, h, sx, sy, false);
  std::vector<uint8_t> dilated(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) dilated[i] = mask[i] || to_mask[i] <= radius_mm;
  return dilated;
}

std::vector<uint8_t> Close(const std::vector<uint8_t>& mask, int w, int h, double sx, double sy, double radius_mm) {
  const std::vector<uint8_t> dilated = Dilate(mask, w, h, sx, sy, radius_mm);
  const std::vector<float> to_outside = InsideDistance(dilated, w, h, sx, sy, false);
  std::vector<uint8_t> closed(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) closed[i] = mask[i] || (dilated[i] && to_outside[i] > radius_mm);
  return closed;
}

// 4-connected components of `mask`: label per pixel (0 background) and each component's pixels.
struct Components {
  std::vector<int> label;
  std::vector<std::vector<int>> pixels;  // component c (label c+1)
};

Components Label(const std::vector<uint8_t>& mask, int w, int h) {
  Components c;
  c.label.assign(mask.size(), 0);
  std::vector<int> stack;
  for (int start = 0; start < w * h; ++start) {
    if (!mask[start] || c.label[start]) continue;
    c.pixels.emplace_back();
    const int id = static_cast<int>(c.pixels.size());
    c.label[start] = id;
    stack.push_back(start);
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      c.pixels.back().push_back(p);
      const int x = p % w, y = p / w;
      const int next[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
      for (const auto& q : next) {
        if (q[0] < 0 || q[1] < 0 || q[0] >= w || q[1] >= h) continue;
        const int i = q[1] * w + q[0];
        if (mask[i] && !c.label[i]) {
          c.label[i] = id;
          stack.push_back(i);
        }
      }
    }
  }
  return c;
}

// Holes filled: everything not reachable from the border through the mask's complement.
std::vector<uint8_t> FillHoles(const std::vector<uint8_t>& mask, int w, int h) {
  std::vector<uint8_t> outside(mask.size(), 0);
  std::vector<int> stack;
  auto seed = [&](int x, int y) {
    const int i = y * w + x;
    if (!mask[i] && !outside[i]) {
      outside[i] = 1;
      stack.push_back(i);
    }
  };
  for (int x = 0; x < w; ++x) seed(x, 0), seed(x, h - 1);
  for (int y = 0; y < h; ++y) seed(0, y), seed(w - 1, y);
  while (!stack.empty()) {
    const int p = stack.back();
    stack.pop_back();
    const int x = p % w, y = p / w;
    if (x > 0) seed(x - 1, y);
    if (x + 1 < w) seed(x + 1, y);
    if (y > 0) seed(x, y - 1);
    if (y + 1 < h) seed(x, y + 1);
  }
  std::vector<uint8_t> filled(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) filled[i] = !outside[i];
  return filled;
}

// A rectangle of a slice, copied out.
struct Window {
  int x0 = 0, y0 = 0, w = 0, h = 0;
  std::vector<float> hu;
  float At(int x, int y) const { return hu[static_cast<std::size_t>(y - y0) * w + (x - x0)]; }
};

Window Cut(const float* v, const Grid& g, int z, int x0, int x1, int y0, int y1) {
  Window win;
  win.x0 = std::max(0, x0);
  win.y0 = std::max(0, y0);
  win.w = std::max(0, std::min(g.nx - 1, x1) - win.x0 + 1);
  win.h = std::max(0, std::min(g.ny - 1, y1) - win.y0 + 1);
  win.hu.resize(static_cast<std::size_t>(win.w) * win.h);
  for (int y = 0; y < win.h; ++y) {
    for (int x = 0; x < win.w; ++x) win.hu[static_cast<std::size_t>(y) * win.w + x] = v[g.At(win.x0 + x, win.y0 + y, z)];
  }
  return win;
}

struct SliceBody {  // the patient's outline on a slice
  bool found = false;
  double cx = 0;  // left-right centre (X voxel)
  int y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

// The patient's outline on a slice, on every second pixel each way (the outline needs no more).
SliceBody FindPatient(const float* v, const Grid& g, int z) {
  const int w = (g.nx + 1) / 2, h = (g.ny + 1) / 2;
  std::vector<uint8_t> mask(static_cast<std::size_t>(w) * h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) mask[static_cast<std::size_t>(y) * w + x] = v[g.At(2 * x, 2 * y, z)] > -500;
  }
  const Components c = Label(mask, w, h);
  SliceBody b;
  std::size_t best = 0;
  for (std::size_t i = 1; i < c.pixels.size(); ++i) {
    if (c.pixels[i].size() > c.pixels[best].size()) best = i;
  }
  if (c.pixels.empty() || c.pixels[best].size() * 4 * g.sx * g.sy < 2000) return b;
  b.found = true;
  b.x0 = g.nx, b.y0 = g.ny, b.x1 = -1, b.y1 = -1;
  double sum = 0;
  for (const int p : c.pixels[best]) {
    const int x = 2 * (p % w), y = 2 * (p / w);
    b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, std::min(g.nx - 1, x + 1));
    b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, std::min(g.ny - 1, y + 1));
    sum += x + 0.5;
  }
  b.cx = sum / static_cast<double>(c.pixels[best].size());
  return b;
}

struct Canal {
  double x = 0, y = 0;  // centroid (voxels)
  int front = 0;        // its anterior edge (smallest Y) at the centroid's column
  double score = 0;
};

// Spinal canal candidates on a slice: compact, fluid-dense holes of the bone mask (dilated by
// `dilate_mm`) with bone anterior to them.
std::vector<Canal> CanalCandidates(const float* v, const Grid& g, int z, const SliceBody& patient, double centre_x,
                                   double half_width_mm, double dilate_mm) {
  const int hw = static_cast<int>(std::ceil(half_width_mm / g.sx));
  const int cx = static_cast<int>(std::lround(centre_x));
  const Window win = Cut(v, g, z, cx - hw, cx + hw, patient.y0, patient.y1);
  std::vector<Canal> out;
  if (win.w < 5 || win.h < 5) return out;
  std::vector<uint8_t> bone(win.hu.size());
  for (std::size_t i = 0; i < bone.size(); ++i) bone[i] = win.hu[i] > kBodyHu;  // the arch, thin on thick slices
  // Dilation bridges gaps in an open arch; the holes shrink by the same amount.
  if (dilate_mm > 0) bone = Dilate(bone, win.w, win.h, g.sx, g.sy, dilate_mm);
  std::vector<uint8_t> free(bone.size());
  for (std::size_t i = 0; i < bone.size(); ++i) free[i] = !bone[i];
  const Components c = Label(free, win.w, win.h);
  const double pixel_mm2 = g.sx * g.sy;
  for (const auto& pixels : c.pixels) {
    const double area = pixels.size() * pixel_mm2;
    if (area < 40 || area > 800) continue;
    int x0 = win.w, x1 = -1, y0 = win.h, y1 = -1;
    double sx = 0, sy = 0, sum = 0;
    int dense = 0;
    bool border = false;
    for (const int p : pixels) {
      const int x = p % win.w, y = p / win.w;
      border = border || x == 0 || y == 0 || x == win.w - 1 || y == win.h - 1;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      sx += x, sy += y, sum += win.hu[p];
      dense += win.hu[p] > 150;
    }
    const double mean = sum / pixels.size();
    if (border) continue;
    if (mean > 60 || mean < -150 || dense > 0.2 * pixels.size()) continue;
    const double wmm = (x1 - x0 + 1) * g.sx, hmm = (y1 - y0 + 1) * g.sy;
    const double aspect = std::max(wmm, hmm) / std::min(wmm, hmm), fill = area / (wmm * hmm);
    if (aspect > 2.5 || fill < 0.45) continue;
    Canal canal{win.x0 + sx / pixels.size(), win.y0 + sy / pixels.size(), 0, 0};
    const int column = static_cast<int>(std::lround(sx / pixels.size()));
    int front = y1;
    for (const int p : pixels) {
      if (p % win.w == column) front = std::min(front, p / win.w);
    }
    // Where the mask was dilated, the canal reaches further forward, to the body's posterior wall.
    for (const int hole_front = front; front - 1 >= 0 && (hole_front - front) * g.sy < dilate_mm + g.sy &&
                                       win.hu[static_cast<std::size_t>(front - 1) * win.w + column] <= kBodyHu;) {
      --front;
    }
    canal.front = win.y0 + front;
    // A vertebral body anterior to it: its posterior wall within 4 mm of the canal, bone again
    // (the anterior wall, or dense marrow) 12-50 mm in front. kBodyHu, not the cortical threshold:
    // partial volume on thick slices lowers the thin cortex.
    auto cortical_at = [&](double mm) {
      const int y = front - static_cast<int>(std::lround(mm / g.sy));
      return y >= 0 && win.hu[static_cast<std::size_t>(y) * win.w + column] > kBodyHu;
    };
    bool posterior_wall = false;
    for (double mm = g.sy; mm <= 4 && !posterior_wall; mm += g.sy) posterior_wall = cortical_at(mm);
    double depth = 0;
    for (double mm = 12; mm <= 50 && depth == 0 && posterior_wall; mm += g.sy) {
      if (cortical_at(mm)) depth = mm;
    }
    if (depth == 0) continue;
    const double bone_mm = std::min(depth, 30.0);
    canal.score = bone_mm + 10 * fill - std::abs(canal.x - patient.cx) * g.sx / 10 - (area > 450 ? (area - 450) / 50 : 0);
    out.push_back(canal);
  }
  return out;
}

struct BodySlice {  // a vertebral body's cross-section on one slice
  bool found = false;
  std::vector<std::pair<int, int>> pixels;  // (x, y)
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  double contrast = 0;  // mean of its 2 mm rim minus mean of its core
  double core_hu = 0;   // mean of its core
};

BodySlice FindBodySlice(const float* v, const Grid& g, int z, const Canal& canal, const BoneParameters& p) {
  BodySlice b;
  const int hw = static_cast<int>(std::ceil(kBodyHalfWidthMm / g.sx));
  const int cx = static_cast<int>(std::lround(canal.x));
  // Down to the canal's centre: the body's posterior surface is concave around the canal, and
  // its posterolateral corners reach behind the canal's front edge; its shell closes there.
  const int centre_row = std::max(canal.front, static_cast<int>(std::lround(canal.y)));
  const Window win = Cut(v, g, z, cx - hw, cx + hw, canal.front - static_cast<int>(std::ceil(70 / g.sy)), centre_row);
  if (win.w < 5 || win.h < 5) return b;
  // Bone and dense marrow, closed and filled: an osteoporotic body's low interior is enclosed by its
  // cortex, which partial volume keeps above kBodyHu even on 5 mm slices where it falls below the
  // cortical threshold.
  std::vector<uint8_t> bone(win.hu.size());
  for (std::size_t i = 0; i < bone.size(); ++i) bone[i] = win.hu[i] > kBodyHu;
  const std::vector<uint8_t> filled = FillHoles(Close(bone, win.w, win.h, g.sx, g.sy, 1.5), win.w, win.h);
  // The seed: the first filled pixel anterior of the canal, on its column, within 30 mm.
  const int column = cx - win.x0;
  int seed = -1;
  const int front_row = canal.front - 1 - win.y0;
  for (int y = front_row; y >= 0 && (front_row - y) * g.sy <= 30; --y) {
    if (column >= 0 && column < win.w && filled[static_cast<std::size_t>(y) * win.w + column]) {
      seed = y * win.w + column;
      break;
    }
  }
  if (seed < 0) return b;
  const Components c = Label(filled, win.w, win.h);
  const auto& pixels = c.pixels[c.label[seed] - 1];
  const double area = pixels.size() * g.sx * g.sy;
  if (area < 150) return b;
  b.x0 = g.nx, b.y0 = g.ny, b.x1 = -1, b.y1 = -1;
  std::vector<uint8_t> mask(filled.size(), 0);
  for (const int q : pixels) {
    const int x = win.x0 + q % win.w, y = win.y0 + q / win.w;
    if (y >= canal.front) continue;  // the body ends at the canal's front edge
    b.pixels.push_back({x, y});
    mask[q] = 1;
    b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x), b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y);
  }
  // An opening cuts what touches the body through a thin contact (an enhanced aorta, rib heads):
  // eroded, the part holding the seed's column grown back within the body.
  {
    const std::vector<float> depth = InsideDistance(mask, win.w, win.h, g.sx, g.sy, true);
    std::vector<uint8_t> core(mask.size());
    for (std::size_t i = 0; i < mask.size(); ++i) core[i] = depth[i] > kOpeningMm;
    const Components parts = Label(core, win.w, win.h);
    int keep = -1;
    std::size_t most = 0;
    for (std::size_t c = 0; c < parts.pixels.size(); ++c) {
      bool on_column = false;
      for (const int q : parts.pixels[c]) on_column = on_column || q % win.w == column;
      if (on_column && parts.pixels[c].size() > most) most = parts.pixels[c].size(), keep = static_cast<int>(c);
    }
    if (keep >= 0) {
      std::vector<uint8_t> kept(mask.size(), 0);
      for (const int q : parts.pixels[keep]) kept[q] = 1;
      std::vector<uint8_t> outside(mask.size());
      for (std::size_t i = 0; i < mask.size(); ++i) outside[i] = !kept[i];
      const std::vector<float> reach = InsideDistance(outside, win.w, win.h, g.sx, g.sy, false);
      b.pixels.clear();
      b.x0 = g.nx, b.y0 = g.ny, b.x1 = -1, b.y1 = -1;
      for (std::size_t i = 0; i < mask.size(); ++i) {
        mask[i] = mask[i] && reach[i] <= kOpeningMm + 0.5 * std::max(g.sx, g.sy);
        if (!mask[i]) continue;
        const int x = win.x0 + static_cast<int>(i) % win.w, y = win.y0 + static_cast<int>(i) / win.w;
        b.pixels.push_back({x, y});
        b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x), b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y);
      }
    }
  }
  if (b.pixels.size() * g.sx * g.sy < 150 || (b.y1 - b.y0 + 1) * g.sy < 12 || (b.x1 - b.x0 + 1) * g.sx < 15) return b;
  const std::vector<float> inside = InsideDistance(mask, win.w, win.h, g.sx, g.sy, true);
  double rim = 0, core = 0;
  std::size_t n_rim = 0, n_core = 0;
  for (const int q : pixels) {
    if (!mask[q]) continue;
    if (inside[q] <= 2) rim += win.hu[q], ++n_rim;
    else if (inside[q] > p.erosion_mm) core += win.hu[q], ++n_core;
  }
  b.contrast = n_core > 0 && n_rim > 0 ? rim / n_rim - core / n_core : 0;
  b.core_hu = n_core > 0 ? core / n_core : 0;
  b.found = true;
  return b;
}

struct Stats {
  double mean = 0, median = 0, sd = 0;
};

Stats Describe(std::vector<float> values) {
  Stats s;
  if (values.empty()) return s;
  double sum = 0;
  for (const float x : values) sum += x;
  s.mean = sum / values.size();
  double squares = 0;
  for (const float x : values) squares += (x - s.mean) * (x - s.mean);
  s.sd = values.size() > 1 ? std::sqrt(squares / (values.size() - 1)) : 0;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  s.median = values[mid];
  if (values.size() % 2 == 0) s.median = (s.median + *std::max_element(values.begin(), values.begin() + mid)) / 2;
  return s;
}

// Walking out of (x, y) on slice z in each of the four in-plane directions, bone (two voxels in a
// row above kEnclosureBoneHu) comes within 40 mm and before anything below kEnclosureOutsideHu (fat,
// fluid, lung: outside the vertebra): the voxel lies inside a cortical ring.
bool EnclosedByBone(const float* smooth, const Grid& g, int x, int y, int z) {
  for (const auto& [dx, dy] : {std::pair{1, 0}, std::pair{-1, 0}, std::pair{0, 1}, std::pair{0, -1}}) {
    const double step = dx != 0 ? g.sx : g.sy;
    bool found = false;
    int dense = 0;  // consecutive voxels above the bone threshold: two make bone, not noise
    for (int s = 1; s * step <= 40; ++s) {
      const int i = x + dx * s, j = y + dy * s;
      if (i < 0 || j < 0 || i >= g.nx || j >= g.ny) break;
      const float hu = smooth[g.At(i, j, z)];
      if (hu < kEnclosureOutsideHu) break;
      dense = hu > kEnclosureBoneHu ? dense + 1 : 0;
      if (dense == 2) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

// A float buffer on transparent huge pages where the kernel offers them (madvise): a volume-sized
// scratch copy otherwise takes one page fault per 4 KiB, which costs more than the smoothing under
// some hypervisors.
class HugeBuffer {
 public:
  explicit HugeBuffer(std::size_t count) {
    constexpr std::size_t kHuge = 2u << 20;
    bytes_ = std::max<std::size_t>(kHuge, (count * sizeof(float) + kHuge - 1) / kHuge * kHuge);
    data_ = static_cast<float*>(std::aligned_alloc(kHuge, bytes_));
    if (data_ == nullptr) throw std::bad_alloc();
    AdviseHugePages(data_, bytes_);
  }
  ~HugeBuffer() { std::free(data_); }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  float* data() { return data_; }
  const float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// In-plane binomial smoothing [1 4 6 4 1] / 16 along x then y (two passes of [1 2 1] / 4: sigma
// one pixel), edges clamped.
void SmoothInPlane(const Volume& v, float* out) {
  const std::size_t nx = v.dims[0], ny = v.dims[1], nz = v.dims[2];
  std::vector<float> rows(nx * ny);
  auto clamp_x = [&](std::ptrdiff_t i) { return static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(i, 0, nx - 1)); };
  for (std::size_t k = 0; k < nz; ++k) {
    const float* in = v.voxels.data() + k * nx * ny;
    for (std::size_t j = 0; j < ny; ++j) {  // along x, into `rows`
      const float* line = in + j * nx;
      float* to = rows.data() + j * nx;
      for (std::size_t i = 0; i < nx; ++i) {
        if (i >= 2 && i + 2 < nx) {
          to[i] = (line[i - 2] + 4 * line[i - 1] + 6 * line[i] + 4 * line[i + 1] + line[i + 2]) * (1.0f / 16);
        } else {
          const auto at = [&](std::ptrdiff_t d) { return line[clamp_x(static_cast<std::ptrdiff_t>(i) + d)]; };
          to[i] = (at(-2) + 4 * at(-1) + 6 * at(0) + 4 * at(1) + at(2)) * (1.0f / 16);
        }
      }
    }
    float* slice = out + k * nx * ny;
    for (std::size_t j = 0; j < ny; ++j) {  // along y, row by row
      const auto row = [&](std::ptrdiff_t d) {
        return rows.data() + std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(j) + d, 0, ny - 1) * nx;
      };
      const float *a = row(-2), *b = row(-1), *c = row(0), *d = row(1), *e = row(2);
      float* to = slice + j * nx;
      for (std::size_t i = 0; i < nx; ++i) to[i] = (a[i] + 4 * b[i] + 6 * c[i] + 4 * d[i] + e[i]) * (1.0f / 16);
    }
  }
}

const char* const kLevels[] = {"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
                               "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"};

// Index in kLevels of a body counted `offset` below T12 (negative: above); -1 outside T1-L5.
int LevelFromT12(int offset) {
  const int index = 11 + offset;
  return index >= 0 && index < 17 ? index : -1;
}

void Check(const BoneHooks& hooks) {
  if (hooks.stop_requested && hooks.stop_requested()) throw Error(ErrorCode::kCancelled, "bone-density: stopped on request");
}

}  // namespace

std::string TriageBand(double mean_hu, const BoneParameters& p) {
  if (mean_hu <= p.likely_hu) return "osteoporosis likely";
  if (mean_hu > p.unlikely_hu) return "osteoporosis unlikely";
  return "DXA suggested";
}

BoneResult MeasureBoneDensity(const Volume& ct, const BoneParameters& p, const BoneHooks& hooks) {
  if (ct.modality != "CT") throw Error(ErrorCode::kInvalidInput, "bone-density: the series is " + ct.modality + ", not CT");
  if (ct.VoxelCount() == 0 || ct.voxels.size() != ct.VoxelCount()) throw Error(ErrorCode::kInvalidInput, "bone-density: empty volume");
  const Grid g = PatientGrid(ct);
  if (g.sz > p.max_slice_mm + 1e-6) {
    throw Error(ErrorCode::kInvalidInput, "bone-density: slices are " + FormatNumber("%.1f", g.sz) + " mm apart, more than the " +
                                              FormatNumber("%.1f", p.max_slice_mm) + " mm accepted (max_slice_mm)");
  }
  BoneResult r;
  if (hooks.progress) hooks.progress(0.0, "finding the spinal canal");
  // Detection runs on an in-plane smoothed copy (binomial 1-2-1 twice, sigma one pixel): sharp
  // kernels' noise otherwise breaks the canal and the cortex apart. Measurements use the original.
  HugeBuffer smoothed(ct.voxels.size());
  SmoothInPlane(ct, smoothed.data());
  const float* smooth = smoothed.data();

  // 1-2. The patient per slice, canal candidates, the best one as the anchor of a track.
  std::vector<SliceBody> patient(g.nz);
  std::vector<std::vector<Canal>> candidates(g.nz);
  int anchor = -1;
  double best = -1e9;
  for (int z = 0; z < g.nz; ++z) {
    Check(hooks);
    patient[z] = FindPatient(smooth, g, z);
    if (!patient[z].found) continue;
    candidates[z] = CanalCandidates(smooth, g, z, patient[z], patient[z].cx, 50, 0);
    for (const auto& c : candidates[z]) {
      if (c.score > best) best = c.score, anchor = z;
    }
  }
  if (anchor < 0) throw Error(ErrorCode::kInvalidInput, "bone-density: no spinal column found in the field of view");
  std::vector<std::optional<Canal>> track(g.nz);
  track[anchor] = *std::max_element(candidates[anchor].begin(), candidates[anchor].end(),
                                    [](const Canal& a, const Canal& b) { return a.score < b.score; });
  for (const int step : {1, -1}) {
    Canal last = *track[anchor];
    int missed = 0;
    double carried_mm = 0;
    for (int z = anchor + step; z >= 0 && z < g.nz; z += step) {
      if (!patient[z].found) break;
      const double reach = 12 + 3 * missed * g.sz / 5;
      auto nearest = [&](const std::vector<Canal>& list) -> std::optional<Canal> {
        std::optional<Canal> found;
        double best_distance = reach;
        for (const auto& c : list) {
          const double d = std::hypot((c.x - last.x) * g.sx, (c.y - last.y) * g.sy);
          if (d <= best_distance) best_distance = d, found = c;
        }
        return found;
      };
      std::optional<Canal> next = nearest(candidates[z]);
      if (!next) next = nearest(CanalCandidates(smooth, g, z, patient[z], last.x, 30, 2));
      bool carried = false;
      if (!next && carried_mm + g.sz <= 40 && FindBodySlice(smooth, g, z, last, p).found) {
        // The arch is open here (foramina) or the canal merges with its surroundings: it is
        // carried over while a vertebral body lies in front of it, 40 mm at most.
        next = last;
        carried = true;
      }
      if (carried) carried_mm += g.sz;
      else if (next) carried_mm = 0;
      if (next) {
        // Bridge a gap by interpolation.
        for (int gap = 1; gap <= missed; ++gap) {
          const double t = static_cast<double>(gap) / (missed + 1);
          const int zz = z - step * (missed + 1 - gap);
          track[zz] = Canal{last.x + t * (next->x - last.x), last.y + t * (next->y - last.y),
                            static_cast<int>(std::lround(last.front + t * (next->front - last.front))), 0};
        }
        track[z] = next;
        last = *next;
        missed = 0;
      } else if (++missed * g.sz > 25) {
        break;
      }
    }
  }
  int z_low = g.nz, z_high = -1;
  for (int z = 0; z < g.nz; ++z) {
    if (track[z]) ++r.canal_slices, z_low = std::min(z_low, z), z_high = std::max(z_high, z);
  }
  if ((z_high - z_low + 1) * g.sz < kMinColumnMm) {
    throw Error(ErrorCode::kInvalidInput, "bone-density: no spinal column found in the field of view (a canal-like structure over " +
                                              FormatNumber("%.0f", (z_high - z_low + 1) * g.sz) + " mm only; " +
                                              FormatNumber("%.0f", kMinColumnMm) + " mm, two vertebrae, needed)");
  }
  {
    std::vector<double> xs;
    for (int z = 0; z < g.nz; ++z) {
      if (track[z]) xs.push_back(track[z]->x);
    }
    std::nth_element(xs.begin(), xs.begin() + xs.size() / 2, xs.end());
    r.sagittal_column = static_cast<std::size_t>(std::lround(g.VoxelIndex(0, xs[xs.size() / 2], ct)));
  }
  if (hooks.progress) hooks.progress(0.3, "finding the vertebral bodies");

  // 3. Body cross-sections.
  std::vector<BodySlice> bodies(g.nz);
  for (int z = z_low; z <= z_high; ++z) {
    Check(hooks);
    if (track[z]) bodies[z] = FindBodySlice(smooth, g, z, *track[z], p);
  }

  // 4. Discs: slices without a body, and slices where the body's cross-section looks least like a
  // ring around marrow (ring minus core attenuation, minus the core's own attenuation: thin slices
  // through a disc lose the ring; thick ones mix both end plates into a dense core), kept at least
  // kDiscSpacingMm apart and kDiscProminence below the highest value within that distance.
  std::vector<double> ringness(g.nz, 0);
  for (int z = z_low; z <= z_high; ++z) {
    if (bodies[z].found) ringness[z] = bodies[z].contrast - bodies[z].core_hu;
  }
  const int spacing = std::max(2, static_cast<int>(std::lround(kDiscSpacingMm / g.sz)));
  std::vector<bool> disc(g.nz, false);
  std::vector<int> order;
  for (int z = z_low; z <= z_high; ++z) {
    if (!bodies[z].found) {
      disc[z] = true;
      continue;
    }
    const bool below = z - 1 < z_low || !bodies[z - 1].found || ringness[z] <= ringness[z - 1];
    const bool above = z + 1 > z_high || !bodies[z + 1].found || ringness[z] <= ringness[z + 1];
    if (below && above && z > z_low && z < z_high) order.push_back(z);
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) { return ringness[a] < ringness[b]; });
  for (const int z : order) {
    bool clear = true;
    double highest = ringness[z];
    for (int k = std::max(z_low, z - spacing); k <= std::min(z_high, z + spacing); ++k) {
      if (k != z && disc[k] && std::abs(k - z) < spacing) clear = false;
      if (bodies[k].found) highest = std::max(highest, ringness[k]);
    }
    if (clear && highest - ringness[z] >= kDiscProminence) disc[z] = true;
  }
  std::vector<std::pair<int, int>> runs;  // (top z, bottom z) between discs, top to bottom
  for (int z = z_high; z >= z_low;) {
    if (disc[z]) {
      --z;
      continue;
    }
    int bottom = z;
    while (bottom - 1 >= z_low && !disc[bottom - 1]) --bottom;
    runs.push_back({z, bottom});
    z = bottom - 1;
  }
  // A run taller than any vertebral body holds a disc the ring did not show (thick slices, partial
  // volume): split at its lowest ring contrast, keeping both parts at least min_body_mm tall.
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto [top, bottom] = runs[i];
    if ((top - bottom + 1) * g.sz <= p.max_body_mm) continue;
    int split = -1;
    for (int k = top - 1; k > bottom; --k) {
      if ((top - k) * g.sz < p.min_body_mm || (k - bottom) * g.sz < p.min_body_mm) continue;
      if (split < 0 || bodies[k].contrast < bodies[split].contrast) split = k;
    }
    if (split < 0) continue;
    runs[i] = {top, split + 1};
    runs.insert(runs.begin() + static_cast<std::ptrdiff_t>(i) + 1, {split - 1, bottom});
    --i;  // the upper part may still be too tall
  }
  std::vector<std::pair<int, int>> kept;
  for (const auto& run : runs) {
    const double height = (run.first - run.second + 1) * g.sz;
    if (height + 1e-6 >= p.min_body_mm) kept.push_back(run);
  }
  if (kept.empty()) throw Error(ErrorCode::kInvalidInput, "bone-density: no vertebral body found along the spinal canal");
  if (kept.size() > 60) kept.resize(60);
  if (hooks.progress) hooks.progress(0.5, "ribs and levels");

  // 6a. Ribs and the sacrum per body.
  std::vector<VertebralBody> list;
  std::vector<bool> sacral;
  for (const auto& [top, bottom] : kept) {
    VertebralBody b;
    b.top_slice = top, b.bottom_slice = bottom;
    b.height_mm = (top - bottom + 1) * g.sz;
    // Ribs: bone reaching from beside the vertebra (15-40 mm from the canal, where rib heads and
    // necks articulate) to 60 mm or more laterally, on one of its slices or the one above. Lumbar transverse processes stop short of 60 mm; the lateral parts of lower ribs
    // passing a lumbar body, the scapulae and the ilium are not joined to the vertebra.
    const int middle_slice = (top + bottom) / 2;
    if (track[middle_slice]) {
      const Canal& canal = *track[middle_slice];
      const int x0 = static_cast<int>(std::lround(canal.x - 130 / g.sx)), x1 = static_cast<int>(std::lround(canal.x + 130 / g.sx));
      const int y0 = static_cast<int>(std::lround(canal.y - 40 / g.sy)), y1 = static_cast<int>(std::lround(canal.y + 60 / g.sy));
      for (int z = bottom; z <= std::min(g.nz - 1, top + 1); ++z) {
        const Window win = Cut(smooth, g, z, x0, x1, y0, y1);
        std::vector<uint8_t> mask(win.hu.size());
        for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = win.hu[i] > p.cortical_hu;
        const Components c = Label(mask, win.w, win.h);
        for (const auto& pixels : c.pixels) {
          bool near[2] = {false, false}, far[2] = {false, false};
          for (const int q : pixels) {
            const double dx = (win.x0 + q % win.w - canal.x) * g.sx;
            const int side = dx > 0 ? 0 : 1;
            near[side] = near[side] || (std::abs(dx) >= 15 && std::abs(dx) <= 40);
            far[side] = far[side] || std::abs(dx) >= 60;
          }
          b.rib_left = b.rib_left || (near[0] && far[0]);
          b.rib_right = b.rib_right || (near[1] && far[1]);
        }
      }
    }
    // The sacrum: bone connected to the body spanning more than sacrum_span_mm.
    bool wide = false;
    const int middle = (top + bottom) / 2;
    if (track[middle]) {
      // A window 40 mm wider than the span each side: bone across it is wide in any case.
      const Canal& canal = *track[middle];
      const int half = static_cast<int>(std::ceil((p.sacrum_span_mm / 2 + 40) / g.sx));
      const Window all = Cut(smooth, g, middle, static_cast<int>(std::lround(canal.x)) - half, static_cast<int>(std::lround(canal.x)) + half,
                             canal.front - static_cast<int>(std::ceil(80 / g.sy)), static_cast<int>(std::lround(canal.y + 60 / g.sy)));
      std::vector<uint8_t> mask(all.hu.size());
      for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = all.hu[i] > p.cortical_hu;
      mask = Close(mask, all.w, all.h, g.sx, g.sy, 1.5);
      const Components c = Label(mask, all.w, all.h);
      const int seed_x = static_cast<int>(std::lround(canal.x)) - all.x0;
      for (int y = canal.front - 1 - all.y0; y >= 0 && seed_x >= 0 && seed_x < all.w && (canal.front - all.y0 - y) * g.sy <= 30; --y) {
        const int id = c.label[static_cast<std::size_t>(y) * all.w + seed_x];
        if (id == 0) continue;
        int x0 = all.w, x1 = -1;
        for (const int q : c.pixels[id - 1]) x0 = std::min(x0, q % all.w), x1 = std::max(x1, q % all.w);
        wide = (x1 - x0 + 1) * g.sx > p.sacrum_span_mm;
        break;
      }
    }
    list.push_back(b);
    sacral.push_back(wide);
  }
  // 6b. Levels from the rib-bearing run (the longest contiguous one).
  int run_a = -1, run_b = -1;
  for (int i = 0; i < static_cast<int>(list.size());) {
    if (!list[i].RibBearing()) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < static_cast<int>(list.size()) && list[j + 1].RibBearing()) ++j;
    if (run_a < 0 || j - i > run_b - run_a) run_a = i, run_b = j;
    i = j + 1;
  }
  // The column ends at the sacrum: the first wide body below the ribs (the alae and the ilium
  // also lie where ribs would; thoracic bodies may be joined to their ribs).
  int sacrum = -1;
  for (std::size_t i = run_b < 0 ? 0 : run_b + 1; i < list.size(); ++i) {
    if (sacral[i]) {
      sacrum = static_cast<int>(i);
      break;
    }
  }
  if (sacrum >= 0) {
    r.sacrum_found = true;
    list.resize(sacrum);
  }

  const int n = static_cast<int>(list.size());
  const bool bottom_anchor = run_b >= 0 && run_b < n - 1;  // a rib-free body below the run
  const bool top_anchor = run_a > 0;                       // a rib-free body above the run
  std::vector<int> level(n, -1);
  std::vector<std::string> confidence(n, "uncertain"), method(n);
  const int ribbed = run_a < 0 ? 0 : run_b - run_a + 1;
  bool named_ok = false;
  if (run_a < 0) {
    for (auto& m : method) m = "no rib-bearing vertebra in the field of view";
  } else if (!bottom_anchor && !top_anchor) {
    for (auto& m : method) m = "the rib-bearing vertebrae fill the field of view: no level to count from";
  } else if (!bottom_anchor && ribbed > 12) {
    for (auto& m : method) m = std::to_string(ribbed) + " rib-bearing vertebrae (12 expected): transitional anatomy";
  } else {
    // The lowest rib-bearing vertebra is the anchor when seen (T12's rib is found reliably; the
    // first ribs, short and curving forward at once, less so): counting from the top confirms it.
    named_ok = true;
    const bool confirmed = top_anchor && bottom_anchor && ribbed == 12;
    for (int i = 0; i < n; ++i) {
      level[i] = bottom_anchor ? LevelFromT12(i - run_b) : LevelFromT12(i - run_a - 11);
      confidence[i] = confirmed ? "high" : "moderate";
      method[i] = confirmed ? "twelve rib-bearing vertebrae, counted from both ends"
                  : !bottom_anchor ? "counted from the highest rib-bearing vertebra (T1)"
                  : top_anchor ? "counted from the lowest rib-bearing vertebra (T12); " + std::to_string(ribbed) +
                                     " rib-bearing vertebrae found above a rib-free one, not the 12 that would confirm it"
                               : "counted from the lowest rib-bearing vertebra (T12)";
      if (level[i] < 0 && i >= run_a && i < run_b) method[i] = "more than twelve rib-bearing vertebrae above T12";
    }
    if (bottom_anchor) {
      const int lumbar = n - 1 - run_b;
      for (int i = run_b + 1; i < n; ++i) {
        if (r.sacrum_found && lumbar != 5) {
          level[i] = -1;
          method[i] = std::to_string(lumbar) + " rib-free vertebrae between the lowest rib and the sacrum (5 expected): "
                      "transitional anatomy";
        } else if (i > run_b + 5) {
          level[i] = -1;
          method[i] = "more than five rib-free vertebrae below the ribs";
        } else if (r.sacrum_found) {
          confidence[i] = "high";
          method[i] = "counted from the lowest rib-bearing vertebra (T12), five lumbar vertebrae above the sacrum";
        }
      }
    }
  }
  // Bodies above T1 (cervical) are not measured.
  std::vector<VertebralBody> named;
  for (int i = 0; i < n; ++i) {
    if (named_ok && i < run_a && level[i] < 0) {  // above T1 by the count: cervical
      ++r.cervical_bodies;
      continue;
    }
    VertebralBody b = list[i];
    b.level = level[i] >= 0 ? kLevels[level[i]] : "";
    b.confidence = level[i] >= 0 ? confidence[i] : "uncertain";
    b.level_method = method[i];
    named.push_back(b);
  }
  r.bodies = std::move(named);
  if (r.cervical_bodies > 0) r.warnings.push_back(std::to_string(r.cervical_bodies) + " cervical vertebra(e) above T1 not measured");
  if (hooks.progress) hooks.progress(0.7, "measuring the trabecular regions");

  // 5. Labels and ROIs.
  r.labels.assign(ct.VoxelCount(), 0);
  const double voxel_ml = g.sx * g.sy * g.sz / 1000;
  for (std::size_t i = 0; i < r.bodies.size(); ++i) {
    Check(hooks);
    VertebralBody& b = r.bodies[i];
    const auto body_label = static_cast<uint8_t>(2 * i + 1), roi_label = static_cast<uint8_t>(2 * i + 2);
    std::size_t body_voxels = 0;
    for (int z = b.bottom_slice; z <= b.top_slice; ++z) {
      for (const auto& [x, y] : bodies[z].pixels) r.labels[g.At(x, y, z)] = body_label;
      body_voxels += bodies[z].pixels.size();
    }
    b.body_ml = body_voxels * voxel_ml;
    const double middle = (b.top_slice + b.bottom_slice) / 2.0;
    b.centre_z_mm = ct.origin[2] + g.VoxelIndex(2, middle, ct) * ct.spacing[2] * ct.slice_direction[2];
    std::vector<int> slab;
    for (int z = b.bottom_slice; z <= b.top_slice; ++z) {
      if (std::abs(z - middle) * g.sz <= p.slab_mm / 2 + 1e-6) slab.push_back(z);
    }
    if (slab.empty()) slab.push_back(static_cast<int>(std::lround(middle)));
    std::vector<float> values;
    std::size_t open = 0;  // ROI voxels not enclosed by cortical bone on their slice
    float highest = -std::numeric_limits<float>::infinity();
    double cx_sum = 0, cy_sum = 0;
    int used = 0;  // slab slices holding the body
    for (const int z : slab) {
      const BodySlice& s = bodies[z];
      if (!s.found) continue;
      const int w = s.x1 - s.x0 + 1, h = s.y1 - s.y0 + 1;
      std::vector<uint8_t> mask(static_cast<std::size_t>(w) * h, 0);
      for (const auto& [x, y] : s.pixels) {
        mask[static_cast<std::size_t>(y - s.y0) * w + (x - s.x0)] = 1;
        highest = std::max(highest, ct.voxels[g.At(x, y, z)]);
      }
      const std::vector<float> inside = InsideDistance(mask, w, h, g.sx, g.sy, true);
      const double ap = h * g.sy;
      const double centre_y = s.y1 + 0.5 - p.roi_centre_fraction * h;  // from the posterior edge
      // The width where the ROI sits: the run of body pixels on the ROI's centre row (the
      // bounding box would count a rib head or an osteophyte at a corner).
      const int row = std::clamp(static_cast<int>(std::lround(centre_y - 0.5)), s.y0, s.y1) - s.y0;
      int run_start = -1, run_end = -1, best_start = 0, best_end = w - 1;
      double best_distance = 1e9;
      const double canal_x = track[z] ? track[z]->x - s.x0 : w / 2.0;
      for (int x = 0; x <= w; ++x) {
        const bool in = x < w && mask[static_cast<std::size_t>(row) * w + x];
        if (in && run_start < 0) run_start = x;
        if (!in && run_start >= 0) {
          run_end = x - 1;
          const double distance = canal_x < run_start ? run_start - canal_x : canal_x > run_end ? canal_x - run_end : 0;
          if (distance < best_distance) best_distance = distance, best_start = run_start, best_end = run_end;
          run_start = -1;
        }
      }
      const double width = (best_end - best_start + 1) * g.sx;
      const double centre_x = s.x0 + (best_start + best_end) / 2.0;
      const double semi_ap = p.roi_ap_fraction * ap / 2, semi_w = p.roi_width_fraction * width / 2;
      cx_sum += centre_x, cy_sum += centre_y, ++used;
      for (const auto& [x, y] : s.pixels) {
        const double dx = (x - centre_x) * g.sx / semi_w, dy = (y - centre_y) * g.sy / semi_ap;
        if (dx * dx + dy * dy > 1) continue;
        if (inside[static_cast<std::size_t>(y - s.y0) * w + (x - s.x0)] <= p.erosion_mm) continue;
        values.push_back(ct.voxels[g.At(x, y, z)]);
        r.labels[g.At(x, y, z)] = roi_label;
        if (!EnclosedByBone(smooth, g, x, y, z)) ++open;
      }
    }
    b.roi_slices = static_cast<int>(slab.size());
    b.roi_centre[0] = g.VoxelIndex(0, used > 0 ? cx_sum / used : (track[slab.front()] ? track[slab.front()]->x : g.nx / 2.0), ct);
    b.roi_centre[1] = g.VoxelIndex(1, used > 0 ? cy_sum / used : g.ny / 2.0, ct);
    b.roi_centre[2] = g.VoxelIndex(2, middle, ct);
    // The patient-axis coordinates map to voxel axes through the grid; reorder into (i, j, k).
    double centre[3];
    for (int axis = 0; axis < 3; ++axis) centre[g.voxel_axis[axis]] = b.roi_centre[axis];
    std::copy(centre, centre + 3, b.roi_centre);
    b.roi_voxels = values.size();
    b.roi_ml = values.size() * voxel_ml;
    if (b.bottom_slice == 0 || b.top_slice == g.nz - 1) {
      b.excluded = true;
      b.exclusion = "cut by the field of view: its middle, where the ROI belongs, is not known";
    } else if (highest > p.metal_hu) {
      b.excluded = true;
      b.exclusion = "metal or very dense material in the body (" + FormatNumber("%.0f", highest) + " HU, above metal_hu " +
                    FormatNumber("%.0f", p.metal_hu) + ")";
    } else if (open > kMaxOpenShare * values.size()) {
      b.excluded = true;
      b.exclusion = "its ROI slab shows no closed cortical ring around " + std::to_string(open) + " of " +
                    std::to_string(values.size()) + " voxels (partial volume with a disc or end plate)";
    } else if (values.size() < 10) {
      b.excluded = true;
      b.exclusion = "the trabecular region holds " + std::to_string(values.size()) + " voxels only";
    } else {
      const Stats s = Describe(values);
      b.mean_hu = s.mean, b.median_hu = s.median, b.sd_hu = s.sd;
    }
    if (b.excluded) {  // not measured: no ROI in the labels either
      for (const int z : slab) {
        for (const auto& [x, y] : bodies[z].pixels) {
          if (r.labels[g.At(x, y, z)] == roi_label) r.labels[g.At(x, y, z)] = body_label;
        }
      }
      b.roi_voxels = 0;
      b.roi_ml = 0;
    }
  }
  // The key level: L1, else T12, else L2 (named and measured).
  for (const char* wanted : {"L1", "T12", "L2"}) {
    for (std::size_t i = 0; i < r.bodies.size() && r.key_body < 0; ++i) {
      if (r.bodies[i].level == wanted && !r.bodies[i].excluded) r.key_body = static_cast<int>(i);
    }
    if (r.key_body >= 0) break;
  }
  if (r.key_body >= 0) {
    r.key_level = r.bodies[r.key_body].level;
    r.triage = TriageBand(r.bodies[r.key_body].mean_hu, p);
  } else {
    r.warnings.push_back("no key level: L1, T12 and L2 are not all of: in the field of view, named with confidence, measured");
  }
  if (hooks.progress) hooks.progress(1.0, "done");
  return r;
}

nlohmann::json BoneResultJson(const BoneResult& r, const BoneParameters& p) {
  nlohmann::json bodies = nlohmann::json::array();
  auto round1 = [](double x) { return std::round(x * 10) / 10; };
  for (const auto& b : r.bodies) {
    nlohmann::json j{{"level", b.level.empty() ? nlohmann::json() : nlohmann::json(b.level)},
                     {"level_confidence", b.confidence},
                     {"level_method", b.level_method},
                     {"ribs", {{"left", b.rib_left}, {"right", b.rib_right}}},
                     {"centre_z_mm", round1(b.centre_z_mm)},
                     {"height_mm", round1(b.height_mm)},
                     {"body_ml", std::round(b.body_ml * 100) / 100},
                     {"roi_voxels", b.roi_voxels},
                     {"roi_ml", std::round(b.roi_ml * 1000) / 1000},
                     {"roi_slices", b.roi_slices},
                     {"excluded", b.excluded}};
    if (b.excluded) {
      j["exclusion"] = b.exclusion;
    } else {
      j["mean_hu"] = round1(b.mean_hu);
      j["median_hu"] = round1(b.median_hu);
      j["sd_hu"] = round1(b.sd_hu);
    }
    bodies.push_back(j);
  }
  nlohmann::json out{{"bodies", bodies},
                     {"sacrum_found", r.sacrum_found},
                     {"cervical_bodies", r.cervical_bodies},
                     {"canal_slices", r.canal_slices},
                     {"bands", {{"osteoporosis_likely_at_or_below_hu", p.likely_hu}, {"osteoporosis_unlikely_above_hu", p.unlikely_hu}}}};
  if (r.key_body >= 0) {
    out["key"] = {{"level", r.key_level}, {"mean_hu", round1(r.bodies[r.key_body].mean_hu)}, {"triage", r.triage}};
  } else {
    out["key"] = nullptr;
  }
  out["warnings"] = r.warnings;
  return out;
}

}  // namespace procnode::bone
