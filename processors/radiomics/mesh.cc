// IBSI 3.1 morphological features from the region's surface mesh, its convex hull and its
// enclosing shapes, and the spatial autocorrelation of its intensities (Moran's I, Geary's C).
//
// The mesh: marching cubes on the morphological mask at iso-level 0.5 (every vertex at the middle
// of a grid edge between a voxel of the region and one outside it), the mask padded by one empty
// voxel on each side so the surface closes. The 256 cube cases are derived here, not typed in: on
// each cube face the crossed edges are joined so that the inside corners are cut off (a face whose
// two inside corners lie on a diagonal keeps them apart, as 6-connectivity does; neighbouring cubes
// decide a shared face alike, so the surface is watertight), the joined edges traced into loops,
// each loop oriented with its normal towards the outside corners and split into the triangles that
// follow the trilinear iso-surface best (Triangulate).
// The convex hull comes from qhull, Moran's and Geary's sums over every pair of voxels from one
// FFT convolution with the 1/distance kernel (FFTW), which makes them O(N log N) instead of O(N^2).
#include <fftw3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <string>
#include <tuple>
#include <vector>

extern "C" {
#include <libqhull_r/libqhull_r.h>
#include <libqhull_r/geom_r.h>
}

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

using Vec = std::array<double, 3>;

Vec Sub(const Vec& a, const Vec& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec Cross(const Vec& a, const Vec& b) { return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]}; }
double Dot(const Vec& a, const Vec& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// A cube's corners are numbered x + 2y + 4z; its edges join corners that differ in one bit.
struct CubeEdge {
  int a, b;  // a < b
};

struct CaseTable {
  std::array<CubeEdge, 12> edges{};
  // Per case (bit c set: corner c inside), the surface's loops of crossed edges, each oriented
  // counter-clockwise seen from outside the region.
  std::array<std::vector<std::vector<int>>, 256> loops;
};

Vec CornerPosition(int c) { return {static_cast<double>(c & 1), static_cast<double>((c >> 1) & 1), static_cast<double>((c >> 2) & 1)}; }

CaseTable BuildCaseTable() {
  CaseTable t;
  int n = 0;
  for (const int bit : {1, 2, 4}) {
    for (int a = 0; a < 8; ++a) {
      if (!(a & bit)) t.edges[n++] = {a, a | bit};
    }
  }
  auto edge_of = [&](int a, int b) {
    if (a > b) std::swap(a, b);
    for (int e = 0; e < 12; ++e) {
      if (t.edges[e].a == a && t.edges[e].b == b) return e;
    }
    return -1;
  };
  // Each face's corners in cyclic order.
  std::vector<std::array<int, 4>> faces;
  for (int axis = 0; axis < 3; ++axis) {
    const int u = 1 << ((axis + 1) % 3), v = 1 << ((axis + 2) % 3);
    for (const int side : {0, 1 << axis}) faces.push_back({side, side | u, side | u | v, side | v});
  }
  for (int config = 0; config < 256; ++config) {
    auto inside = [&](int c) { return (config >> c) & 1; };
    std::array<std::vector<int>, 12> next;  // each crossed edge: the crossed edges joined to it
    for (const auto& q : faces) {
      std::array<int, 4> crossed{};
      int count = 0;
      for (int k = 0; k < 4; ++k) crossed[k] = inside(q[k]) != inside(q[(k + 1) % 4]) ? edge_of(q[k], q[(k + 1) % 4]) : -1;
      for (int k = 0; k < 4; ++k) count += crossed[k] >= 0;
      if (count == 2) {
        int first = -1;
        for (int k = 0; k < 4; ++k) {
          if (crossed[k] < 0) continue;
          if (first < 0) {
            first = crossed[k];
          } else {
            next[first].push_back(crossed[k]);
            next[crossed[k]].push_back(first);
          }
        }
      } else if (count == 4) {  // inside corners on a diagonal: cut each off on its own
        for (int k = 0; k < 4; ++k) {
          if (!inside(q[k])) continue;
          const int before = crossed[(k + 3) % 4], after = crossed[k];
          next[before].push_back(after);
          next[after].push_back(before);
        }
      }
    }
    std::array<bool, 12> used{};
    for (int start = 0; start < 12; ++start) {
      if (used[start] || next[start].empty()) continue;
      std::vector<int> loop{start};
      used[start] = true;
      int previous = start, current = next[start][0];
      while (current != start) {
        loop.push_back(current);
        used[current] = true;
        const int following = next[current][0] == previous ? next[current][1] : next[current][0];
        previous = current;
        current = following;
      }
      // Orientation: the loop's (Newell) normal must point from the inside corners to the outside.
      auto mid = [&](int e) {
        const Vec p = CornerPosition(t.edges[e].a), q = CornerPosition(t.edges[e].b);
        return Vec{(p[0] + q[0]) / 2, (p[1] + q[1]) / 2, (p[2] + q[2]) / 2};
      };
      Vec normal{0, 0, 0}, outward{0, 0, 0};
      for (std::size_t i = 0; i < loop.size(); ++i) {
        const Vec c = Cross(mid(loop[i]), mid(loop[(i + 1) % loop.size()]));
        for (int a = 0; a < 3; ++a) normal[a] += c[a];
        const CubeEdge& e = t.edges[loop[i]];
        const Vec d = inside(e.a) ? Sub(CornerPosition(e.b), CornerPosition(e.a)) : Sub(CornerPosition(e.a), CornerPosition(e.b));
        for (int a = 0; a < 3; ++a) outward[a] += d[a];
      }
      if (Dot(normal, outward) < 0) std::reverse(loop.begin(), loop.end());
      t.loops[config].push_back(loop);
    }
  }
  return t;
}

const CaseTable& Cases() {
  static const CaseTable table = BuildCaseTable();
  return table;
}

// Each case's triangles (triples of edge numbers): a loop's corners need not lie in one plane, and
// of its triangulations the one whose triangles lie closest to the cube's trilinear iso-surface is
// kept (least area-weighted squared deviation of the interpolant from 0.5 at the triangles'
// centroids, by dynamic programming over the loop's sub-polygons), keeping the loop's orientation.
// This reproduces the classic marching cubes table wherever the cube's faces are unambiguous.
std::array<std::vector<std::array<int, 3>>, 256> Triangulate(const CaseTable& table) {
  std::array<std::vector<std::array<int, 3>>, 256> triangles;
  for (int config = 0; config < 256; ++config) {
    auto interpolant = [&](const Vec& q) {
      double value = 0;
      for (int c = 0; c < 8; ++c) {
        if (!((config >> c) & 1)) continue;
        const Vec k = CornerPosition(c);
        double w = 1;
        for (int a = 0; a < 3; ++a) w *= k[a] > 0 ? q[a] : 1 - q[a];
        value += w;
      }
      return value;
    };
    for (const std::vector<int>& loop : table.loops[config]) {
      const std::size_t n = loop.size();
      std::vector<Vec> p;
      for (const int e : loop) {
        const Vec a = CornerPosition(table.edges[e].a), b = CornerPosition(table.edges[e].b);
        p.push_back({(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2});
      }
      auto deviation = [&](std::size_t i, std::size_t k, std::size_t j) {
        const Vec centroid{(p[i][0] + p[k][0] + p[j][0]) / 3, (p[i][1] + p[k][1] + p[j][1]) / 3, (p[i][2] + p[k][2] + p[j][2]) / 3};
        const Vec c = Cross(Sub(p[k], p[i]), Sub(p[j], p[i]));
        const double d = interpolant(centroid) - 0.5;
        return std::sqrt(Dot(c, c)) / 2 * d * d;
      };
      // cost[i][j]: the least deviation of the sub-polygon i..j; split[i][j]: its apex.
      std::vector<std::vector<double>> cost(n, std::vector<double>(n, 0));
      std::vector<std::vector<std::size_t>> split(n, std::vector<std::size_t>(n, 0));
      for (std::size_t gap = 2; gap < n; ++gap) {
        for (std::size_t i = 0; i + gap < n; ++i) {
          const std::size_t j = i + gap;
          cost[i][j] = 1e300;
          for (std::size_t k = i + 1; k < j; ++k) {
            const double c = cost[i][k] + cost[k][j] + deviation(i, k, j) + 1e-12 * static_cast<double>(k);  // ties: the lowest apex
            if (c < cost[i][j]) cost[i][j] = c, split[i][j] = k;
          }
        }
      }
      std::vector<std::pair<std::size_t, std::size_t>> pending{{0, n - 1}};
      while (!pending.empty()) {
        const auto [i, j] = pending.back();
        pending.pop_back();
        if (j < i + 2) continue;
        const std::size_t k = split[i][j];
        triangles[config].push_back({loop[i], loop[k], loop[j]});
        pending.push_back({i, k});
        pending.push_back({k, j});
      }
    }
  }
  return triangles;
}

const std::array<std::vector<std::array<int, 3>>, 256>& CaseTriangles() {
  static const auto triangles = Triangulate(Cases());
  return triangles;
}

// Runs qhull on `points` (x, y, z each); fills the hull's volume, area and vertex indices, or
// returns qhull's message.
struct Hull {
  double volume = 0, area = 0;
  std::vector<std::size_t> vertices;
  std::string error;
};

Hull ConvexHull(std::vector<double>& points) {
  Hull hull;
  char* text = nullptr;
  std::size_t text_size = 0;
  FILE* errors = open_memstream(&text, &text_size);
  qhT qh_storage;
  qhT* qh = &qh_storage;
  qh_zero(qh, errors);
  char flags[] = "qhull Qt";
  const int code = qh_new_qhull(qh, 3, static_cast<int>(points.size() / 3), points.data(), False, flags, nullptr, errors);
  if (code == 0) {
    qh_getarea(qh, qh->facet_list);
    hull.volume = qh->totvol;
    hull.area = qh->totarea;
    vertexT* vertex;
    FORALLvertices { hull.vertices.push_back(static_cast<std::size_t>(qh_pointid(qh, vertex->point))); }
  }
  qh_freeqhull(qh, !qh_ALL);
  int long_bytes = 0, total_bytes = 0;
  qh_memfreeshort(qh, &long_bytes, &total_bytes);
  if (errors != nullptr) std::fclose(errors);
  if (code != 0) {
    std::string message = text != nullptr ? std::string(text, text_size) : std::string();
    const auto end = message.find('\n');
    hull.error = "qhull found no hull (" + message.substr(0, end == std::string::npos ? message.size() : end) + ")";
  }
  std::free(text);
  return hull;
}

// Surface area of an ellipsoid with semi-axes a >= b >= c (IBSI 3.1.22: the Legendre series to
// order 20, written as (alpha beta)^n P_n(x) so that a sphere needs no division by zero).
double EllipsoidArea(double a, double b, double c) {
  const double alpha = std::sqrt(std::max(0.0, 1 - b * b / (a * a))), beta = std::sqrt(std::max(0.0, 1 - c * c / (a * a)));
  const double half_sum = (alpha * alpha + beta * beta) / 2, product_squared = alpha * alpha * beta * beta;
  double previous = 1, current = half_sum;  // Q_0, Q_1
  double sum = previous / 1 + current / (1 - 4.0);
  for (int n = 1; n < 20; ++n) {
    const double following = ((2 * n + 1) * half_sum * current - n * product_squared * previous) / (n + 1);
    previous = current;
    current = following;
    sum += current / (1 - 4.0 * (n + 1) * (n + 1));
  }
  return 4 * std::numbers::pi * a * b * sum;
}

std::mutex& FftwPlanning() {  // FFTW's planner is not thread-safe; its execution is
  static std::mutex m;
  return m;
}

// The FFT length for at least n: a power of two, or three times one. So few lengths (each at most
// 1.5 times what is needed) that a batch of similar regions meets the same sizes again, and the
// plans (whose making costs more than a small transform) come from the cache below.
std::size_t FftLength(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p *= 2;
  return p / 4 * 3 >= n && p >= 4 ? p / 4 * 3 : p;
}

using Size = std::array<std::size_t, 3>;
using Spacing = std::array<double, 3>;

// The inverse-distance kernel on a padded grid of `size`: at each index the weight of the offset it
// stands for, indices past the middle standing for negative offsets (wrapped). Every offset between
// two voxels of a box that `size` pads (size >= 2 box - 1) has its own index this way, so one kernel
// serves every region of the size; the indices no pair uses hold weights that meet only zeros.
void FillKernel(double* kernel, const Size& size, const Spacing& s) {
  auto offset = [&](std::size_t index, int axis) {
    return static_cast<double>(index <= size[axis] / 2 ? static_cast<long>(index) : static_cast<long>(index) - static_cast<long>(size[axis])) *
           s[axis];
  };
  for (std::size_t k = 0; k < size[2]; ++k) {
    const double z = offset(k, 2);
    for (std::size_t j = 0; j < size[1]; ++j) {
      const double y = offset(j, 1);
      double* row = kernel + (k * size[1] + j) * size[0];
      for (std::size_t i = 0; i < size[0]; ++i) {
        const double x = offset(i, 0), squared = x * x + y * y + z * z;
        row[i] = squared > 0 ? 1 / std::sqrt(squared) : 0.0;
      }
    }
  }
}

struct SpectrumArray {  // an fftw_alloc'd spectrum
  explicit SpectrumArray(std::size_t count) : data(fftw_alloc_complex(count)) {}
  ~SpectrumArray() { fftw_free(data); }
  SpectrumArray(const SpectrumArray&) = delete;
  SpectrumArray& operator=(const SpectrumArray&) = delete;
  fftw_complex* data;
};
using Spectrum = std::shared_ptr<const SpectrumArray>;

// This thread's transforms by size: FFTW's plans (forward real-to-complex, backward
// complex-to-real, out of place; at most 32 sizes) and the kernel's spectrum per size and voxel
// spacing (up to 32 MiB of them), kept for the thread's next region: a batch of similar regions
// meets the same sizes again, and neither the plans nor the kernel's transform are made twice.
class TransformCache {
 public:
  ~TransformCache() { Clear(); }

  // The plans for `size`, made on arrays allocated as `real` and `spectrum` are (fftw_alloc: the
  // new-array execute needs the same alignment).
  std::pair<fftw_plan, fftw_plan> Plans(const Size& size, double* real, fftw_complex* spectrum) {
    const auto it = plans_.find(size);
    if (it != plans_.end()) return it->second;
    if (plans_.size() >= 32) Clear();
    std::lock_guard lock(FftwPlanning());
    const int n2 = static_cast<int>(size[2]), n1 = static_cast<int>(size[1]), n0 = static_cast<int>(size[0]);
    const auto made = std::make_pair(fftw_plan_dft_r2c_3d(n2, n1, n0, real, spectrum, FFTW_ESTIMATE),
                                     fftw_plan_dft_c2r_3d(n2, n1, n0, spectrum, real, FFTW_ESTIMATE));
    plans_[size] = made;
    return made;
  }

  // The kernel's spectrum for `size` and `spacing`, transformed with `forward` (Plans(size)).
  Spectrum Kernel(const Size& size, const Spacing& spacing, fftw_plan forward) {
    const auto key = std::make_pair(size, spacing);
    const auto it = kernels_.find(key);
    if (it != kernels_.end()) return it->second;
    const std::size_t total = size[0] * size[1] * size[2], count = size[2] * size[1] * (size[0] / 2 + 1);
    double* kernel = fftw_alloc_real(total);
    auto spectrum = std::make_shared<SpectrumArray>(count);
    FillKernel(kernel, size, spacing);
    fftw_execute_dft_r2c(forward, kernel, spectrum->data);
    fftw_free(kernel);
    const std::size_t bytes = count * sizeof(fftw_complex);
    if (bytes > kKernelBytes) return spectrum;  // too large to keep
    if (kernel_bytes_ + bytes > kKernelBytes) kernels_.clear(), kernel_bytes_ = 0;
    kernels_[key] = spectrum;
    kernel_bytes_ += bytes;
    return spectrum;
  }

 private:
  static constexpr std::size_t kKernelBytes = std::size_t{32} << 20;
  void Clear() {
    kernels_.clear();  // made with the plans being destroyed
    kernel_bytes_ = 0;
    std::lock_guard lock(FftwPlanning());
    for (auto& [size, plans] : plans_) {
      fftw_destroy_plan(plans.first);
      fftw_destroy_plan(plans.second);
    }
    plans_.clear();
  }
  std::map<Size, std::pair<fftw_plan, fftw_plan>> plans_;
  std::map<std::pair<Size, Spacing>, Spectrum> kernels_;
  std::size_t kernel_bytes_ = 0;
};

// Clears `keep` for every kept lattice point that is not a corner of the convex hull of the kept
// points in its plane across `axis` (Andrew's monotone chain, exact in integers; points on a hull
// edge between two corners are not corners).
void KeepPlaneHullCorners(const std::vector<std::array<int32_t, 3>>& lattice, int axis, std::vector<uint8_t>& keep) {
  const int u = (axis + 1) % 3, w = (axis + 2) % 3;
  std::vector<std::size_t> order;
  for (std::size_t v = 0; v < lattice.size(); ++v) {
    if (keep[v]) order.push_back(v);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& p = lattice[a];
    const auto& q = lattice[b];
    return std::tie(p[axis], p[u], p[w]) < std::tie(q[axis], q[u], q[w]);
  });
  auto cross = [&](std::size_t o, std::size_t a, std::size_t b) {
    const auto &po = lattice[o], &pa = lattice[a], &pb = lattice[b];
    return static_cast<int64_t>(pa[u] - po[u]) * (pb[w] - po[w]) - static_cast<int64_t>(pa[w] - po[w]) * (pb[u] - po[u]);
  };
  std::vector<std::size_t> chain;
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first;
    while (last < order.size() && lattice[order[last]][axis] == lattice[order[first]][axis]) ++last;
    if (last - first > 2) {
      for (std::size_t x = first; x < last; ++x) keep[order[x]] = 0;
      // Lower then upper chain over the plane's points (sorted by u, then w).
      for (int pass = 0; pass < 2; ++pass) {
        chain.clear();
        for (std::size_t x = 0; x < last - first; ++x) {
          const std::size_t v = order[pass == 0 ? first + x : last - 1 - x];
          while (chain.size() >= 2 && cross(chain[chain.size() - 2], chain.back(), v) <= 0) chain.pop_back();
          chain.push_back(v);
        }
        for (const std::size_t v : chain) keep[v] = 1;
      }
    }
    first = last;
  }
}

}  // namespace

void MeshMorphologyFeatures(const Region& region, FeatureSet& out) {
  const std::vector<uint8_t>& shape = region.morphological_mask.empty() ? region.mask : region.morphological_mask;
  const std::size_t nx = region.dims[0], ny = region.dims[1], nz = region.dims[2];
  if (shape.size() != nx * ny * nz || region.mask.size() != shape.size()) {
    throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
  }
  // The morphological mask's bounding box, padded by one voxel each side.
  const auto box = BoundingBox(shape, region.dims);
  if (!box) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  const auto& [lo, hi] = *box;
  // Grid of corners (voxel centres) with the padding: index g = corner index + lo - 1.
  const long cx = static_cast<long>(hi[0] - lo[0] + 3), cy = static_cast<long>(hi[1] - lo[1] + 3), cz = static_cast<long>(hi[2] - lo[2] + 3);
  // The box with its empty border, one byte per corner, so a cube's case is eight loads.
  std::vector<uint8_t> padded(static_cast<std::size_t>(cx * cy * cz), 0);
  for (long k = 1; k + 1 < cz; ++k) {
    for (long j = 1; j + 1 < cy; ++j) {
      const uint8_t* row = &shape[((static_cast<std::size_t>(k) - 1 + lo[2]) * ny + static_cast<std::size_t>(j) - 1 + lo[1]) * nx + lo[0]];
      uint8_t* to = &padded[static_cast<std::size_t>((k * cy + j) * cx + 1)];
      for (long i = 0; i + 2 < cx; ++i) to[i] = row[i] != 0;
    }
  }
  std::array<std::size_t, 8> corner{};
  for (int c = 0; c < 8; ++c) corner[c] = static_cast<std::size_t>(((c >> 2) & 1) * cx * cy + ((c >> 1) & 1) * cx + (c & 1));
  const CaseTable& table = Cases();
  const auto& triangles = CaseTriangles();
  // Each case's triangles at this spacing, once: their area, and for the volume (the divergence
  // theorem: the sum of v0 . (v1 x v2) / 6) the parts that do not depend on where the cube is:
  // a triangle (p+a, p+b, p+c) of the cube at p gives p . ((b-a) x (c-a)) + a . (b x c).
  const Vec s = region.spacing;
  std::array<double, 256> case_area{}, case_offset{};
  std::array<Vec, 256> case_normal{};
  for (int config = 1; config < 255; ++config) {
    for (const auto& tri : triangles[config]) {
      std::array<Vec, 3> v{};
      for (int t = 0; t < 3; ++t) {
        const Vec p = CornerPosition(table.edges[tri[t]].a), q = CornerPosition(table.edges[tri[t]].b);
        for (int ax = 0; ax < 3; ++ax) v[t][ax] = (p[ax] + q[ax]) / 2 * s[ax];
      }
      const Vec n = Cross(Sub(v[1], v[0]), Sub(v[2], v[0]));
      case_area[config] += std::sqrt(Dot(n, n)) / 2;
      for (int ax = 0; ax < 3; ++ax) case_normal[config][ax] += n[ax];
      case_offset[config] += Dot(v[0], Cross(v[1], v[2]));
    }
  }
  double volume = 0, area = 0;
  for (long k = 0; k + 1 < cz; ++k) {
    for (long j = 0; j + 1 < cy; ++j) {
      for (long i = 0; i + 1 < cx; ++i) {
        const uint8_t* at = &padded[static_cast<std::size_t>((k * cy + j) * cx + i)];
        int config = 0;
        for (int c = 0; c < 8; ++c) config |= at[corner[c]] << c;
        if (config == 0 || config == 255) continue;
        area += case_area[config];
        const Vec& n = case_normal[config];
        volume += i * s[0] * n[0] + j * s[1] * n[1] + k * s[2] * n[2] + case_offset[config];
      }
    }
  }
  volume /= 6;
  // The mesh's vertices: one at the middle of every grid edge between a corner inside and one
  // outside, and its doubled grid position (integers) for the hull's filter below.
  std::vector<Vec> vertices;
  std::vector<std::array<int32_t, 3>> lattice;
  const std::array<long, 3> step{1, cx, cx * cy};
  for (int axis = 0; axis < 3; ++axis) {
    const std::array<long, 3> end{cx - (axis == 0), cy - (axis == 1), cz - (axis == 2)};
    for (long k = 0; k < end[2]; ++k) {
      for (long j = 0; j < end[1]; ++j) {
        for (long i = 0; i < end[0]; ++i) {
          const std::size_t at = static_cast<std::size_t>((k * cy + j) * cx + i);
          if (padded[at] == padded[at + static_cast<std::size_t>(step[axis])]) continue;
          std::array<int32_t, 3> twice{static_cast<int32_t>(2 * i), static_cast<int32_t>(2 * j), static_cast<int32_t>(2 * k)};
          twice[axis] += 1;
          lattice.push_back(twice);
          vertices.push_back({twice[0] * s[0] / 2, twice[1] * s[1] / 2, twice[2] * s[2] / 2});
        }
      }
    }
  }
  out.Set("morph_volume", volume);
  out.Set("morph_area_mesh", area);
  out.Set("morph_av", area / volume);
  out.Set("morph_comp_1", volume / (std::sqrt(std::numbers::pi) * std::pow(area, 1.5)));
  out.Set("morph_comp_2", 36 * std::numbers::pi * volume * volume / (area * area * area));
  out.Set("morph_sph_dispr", area / std::cbrt(36 * std::numbers::pi * volume * volume));
  out.Set("morph_sphericity", std::cbrt(36 * std::numbers::pi * volume * volume) / area);
  out.Set("morph_asphericity", std::cbrt(area * area * area / (36 * std::numbers::pi * volume * volume)) - 1);
  // Axis-aligned bounding box of the mesh.
  Vec bmin = vertices.front(), bmax = vertices.front();
  for (const Vec& v : vertices) {
    for (int a = 0; a < 3; ++a) bmin[a] = std::min(bmin[a], v[a]), bmax[a] = std::max(bmax[a], v[a]);
  }
  const Vec extent = Sub(bmax, bmin);
  out.Set("morph_vol_dens_aabb", volume / (extent[0] * extent[1] * extent[2]));
  out.Set("morph_area_dens_aabb", area / (2 * (extent[0] * extent[1] + extent[0] * extent[2] + extent[1] * extent[2])));
  // Approximate enclosing ellipsoid: semi-axes 2 sqrt(eigenvalue), from the PCA axis lengths.
  if (out.values.contains("morph_pca_maj_axis") && out.values.contains("morph_pca_least_axis")) {
    const double a = out.values.at("morph_pca_maj_axis") / 2, b = out.values.at("morph_pca_min_axis") / 2,
                 c = out.values.at("morph_pca_least_axis") / 2;
    if (a > 0 && b > 0 && c > 0) {
      out.Set("morph_vol_dens_aee", 3 * volume / (4 * std::numbers::pi * a * b * c));
      out.Set("morph_area_dens_aee", area / EllipsoidArea(a, b, c));
    } else {
      for (const char* tag : {"morph_vol_dens_aee", "morph_area_dens_aee"}) {
        out.undefined[tag] = "the region's voxel centres lie in one plane or line (a PCA axis of 0): no enclosing ellipsoid";
      }
    }
  }
  // Convex hull of the mesh's vertices; the maximum diameter lies between two of its vertices.
  // Only vertices that end their line along every axis can be hull vertices (one between two
  // others on a line is on their segment), so qhull gets those alone: the same hull, far fewer points.
  std::vector<uint8_t> extreme(vertices.size(), 1);
  const std::array<long, 3> doubled{2 * cx, 2 * cy, 2 * cz};  // lattice coordinates lie in [0, 2c)
  for (int axis = 0; axis < 3; ++axis) {
    const int u = (axis + 1) % 3, w = (axis + 2) % 3;
    // Per line (its two other coordinates), the vertex lowest and highest along `axis`.
    std::vector<int32_t> lowest(static_cast<std::size_t>(doubled[u] * doubled[w]), -1), highest(lowest.size(), -1);
    for (std::size_t v = 0; v < vertices.size(); ++v) {
      const std::size_t line = static_cast<std::size_t>(lattice[v][u] * doubled[w] + lattice[v][w]);
      if (lowest[line] < 0 || lattice[v][axis] < lattice[static_cast<std::size_t>(lowest[line])][axis]) lowest[line] = static_cast<int32_t>(v);
      if (highest[line] < 0 || lattice[v][axis] > lattice[static_cast<std::size_t>(highest[line])][axis]) highest[line] = static_cast<int32_t>(v);
    }
    std::vector<uint8_t> end(vertices.size(), 0);
    for (std::size_t line = 0; line < lowest.size(); ++line) {
      if (lowest[line] >= 0) end[static_cast<std::size_t>(lowest[line])] = end[static_cast<std::size_t>(highest[line])] = 1;
    }
    for (std::size_t v = 0; v < vertices.size(); ++v) extreme[v] &= end[v];
  }
  // Nor can a vertex inside its plane's convex hull (the plane across each axis through it): each
  // plane's remaining vertices are cut to the corners of their 2D hull (exact, on the lattice).
  for (int axis = 0; axis < 3; ++axis) KeepPlaneHullCorners(lattice, axis, extreme);
  std::vector<double> points;
  std::vector<std::size_t> kept;
  for (std::size_t v = 0; v < vertices.size(); ++v) {
    if (!extreme[v]) continue;
    points.insert(points.end(), vertices[v].begin(), vertices[v].end());
    kept.push_back(v);
  }
  Hull hull = ConvexHull(points);
  for (std::size_t& v : hull.vertices) v = kept[v];
  if (!hull.error.empty()) {
    for (const char* tag : {"morph_vol_dens_conv_hull", "morph_area_dens_conv_hull", "morph_diam"}) out.undefined[tag] = hull.error;
  } else {
    out.Set("morph_vol_dens_conv_hull", volume / hull.volume);
    out.Set("morph_area_dens_conv_hull", area / hull.area);
    double diameter = 0;
    for (std::size_t x = 0; x < hull.vertices.size(); ++x) {
      for (std::size_t y = x + 1; y < hull.vertices.size(); ++y) {
        const Vec d = Sub(vertices[hull.vertices[x]], vertices[hull.vertices[y]]);
        diameter = std::max(diameter, Dot(d, d));
      }
    }
    out.Set("morph_diam", std::sqrt(diameter));
  }
  // Integrated intensity: the mesh volume times the intensity mask's mean.
  double sum = 0, n = 0;
  for (std::size_t v = 0; v < region.mask.size(); ++v) {
    if (region.mask[v]) sum += region.intensities[v], n += 1;
  }
  out.Set("morph_integ_int", n > 0 ? volume * sum / n : NAN);
}

void AutocorrelationFeatures(const Region& region, FeatureSet& out) {
  const std::size_t nx = region.dims[0], ny = region.dims[1], nz = region.dims[2];
  if (region.mask.size() != nx * ny * nz) throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
  double sum = 0, n = 0;
  for (std::size_t v = 0; v < region.mask.size(); ++v) {
    if (region.mask[v]) sum += region.intensities[v], n += 1;
  }
  if (n < 2) {
    for (const char* tag : {"morph_moran_i", "morph_geary_c"}) out.undefined[tag] = "needs at least two voxels in the region";
    return;
  }
  const double mean = sum / n;
  const Box region_box = *BoundingBox(region.mask, region.dims);  // a copy: the optional is a temporary
  const auto& [lo, hi] = region_box;
  // Padded grid: every offset between two voxels of the box fits without wrapping onto another.
  Size box{}, size{};
  for (int a = 0; a < 3; ++a) box[a] = hi[a] - lo[a] + 1, size[a] = FftLength(2 * box[a] - 1);
  const std::size_t total = size[0] * size[1] * size[2], half = size[0] / 2 + 1, spectrum = size[2] * size[1] * half;
  double* deviation = fftw_alloc_real(total);
  double* indicator = fftw_alloc_real(total);
  fftw_complex* deviation_f = fftw_alloc_complex(spectrum);
  fftw_complex* indicator_f = fftw_alloc_complex(spectrum);
  std::fill(deviation, deviation + total, 0.0);
  std::fill(indicator, indicator + total, 0.0);
  auto at = [&](std::size_t i, std::size_t j, std::size_t k) { return (k * size[1] + j) * size[0] + i; };
  double squares = 0;
  for (std::size_t k = 0; k < box[2]; ++k) {
    for (std::size_t j = 0; j < box[1]; ++j) {
      for (std::size_t i = 0; i < box[0]; ++i) {
        const std::size_t v = ((k + lo[2]) * ny + j + lo[1]) * nx + i + lo[0];
        if (!region.mask[v]) continue;
        const double d = region.intensities[v] - mean;
        deviation[at(i, j, k)] = d;
        indicator[at(i, j, k)] = 1;
        squares += d * d;
      }
    }
  }
  thread_local TransformCache transforms;
  const auto [forward, backward] = transforms.Plans(size, deviation, deviation_f);
  const Spectrum kernel = transforms.Kernel(size, region.spacing, forward);
  const fftw_complex* kernel_f = kernel->data;
  fftw_execute_dft_r2c(forward, deviation, deviation_f);
  fftw_execute_dft_r2c(forward, indicator, indicator_f);
  for (std::size_t f = 0; f < spectrum; ++f) {
    const double kr = kernel_f[f][0], ki = kernel_f[f][1];
    const double dr = deviation_f[f][0], di = deviation_f[f][1], mr = indicator_f[f][0], mi = indicator_f[f][1];
    deviation_f[f][0] = dr * kr - di * ki;
    deviation_f[f][1] = dr * ki + di * kr;
    indicator_f[f][0] = mr * kr - mi * ki;
    indicator_f[f][1] = mr * ki + mi * kr;
  }
  // The c2r transforms overwrite their input; each writes its own output array.
  fftw_execute_dft_c2r(backward, deviation_f, deviation);
  fftw_execute_dft_c2r(backward, indicator_f, indicator);
  double weights = 0, cross = 0, weighted_squares = 0;
  for (std::size_t k = 0; k < box[2]; ++k) {
    for (std::size_t j = 0; j < box[1]; ++j) {
      for (std::size_t i = 0; i < box[0]; ++i) {
        const std::size_t v = ((k + lo[2]) * ny + j + lo[1]) * nx + i + lo[0];
        if (!region.mask[v]) continue;
        const double d = region.intensities[v] - mean;  // the inverse transforms overwrote the arrays
        const double neighbours = indicator[at(i, j, k)] / static_cast<double>(total);  // sum_j w_ij
        weights += neighbours;
        cross += d * deviation[at(i, j, k)] / static_cast<double>(total);  // sum_j w_ij d_i d_j
        weighted_squares += d * d * neighbours;
      }
    }
  }
  fftw_free(deviation);
  fftw_free(indicator);
  fftw_free(deviation_f);
  fftw_free(indicator_f);
  if (squares <= 0) {
    for (const char* tag : {"morph_moran_i", "morph_geary_c"}) out.undefined[tag] = "undefined for constant intensities";
    return;
  }
  out.Set("morph_moran_i", n / weights * cross / squares);
  // sum w_ij (x_i - x_j)^2 = 2 sum_i d_i^2 sum_j w_ij - 2 sum w_ij d_i d_j
  out.Set("morph_geary_c", (n - 1) * (2 * weighted_squares - 2 * cross) / (2 * weights * squares));
}

}  // namespace procnode::radiomics
