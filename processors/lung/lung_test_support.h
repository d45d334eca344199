// Test support for the lung processor: a synthetic chest phantom with known anatomy, and
// reference implementations written independently of the backends (plain breadth-first search).
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "core/volume.h"
#include "processors/lung/lung_backend.h"

namespace procnode::lung::testing {

struct Ellipsoid {
  double cx, cy, cz, rx, ry, rz;  // voxels
  bool Contains(double x, double y, double z) const {
    const double a = (x - cx) / rx, b = (y - cy) / ry, c = (z - cz) / rz;
    return a * a + b * b + c * c <= 1.0;
  }
};

struct Phantom {
  Volume volume;
  Ellipsoid right, left, emphysema;  // emphysema lies in the right lung
  double voxel_ml = 0;
};

// 128 x 128 x 60 voxels of 2 x 2 x 5 mm, LPS axes (voxel x increases towards the patient's left,
// z towards the head): a soft-tissue body (40 HU) in outside air (-1000 HU), two lungs (-850 HU)
// with a 12 mm low-attenuation sphere (-980 HU) in the right one, a trachea from the top slice to
// z = 40 that splits into two main bronchi (z = 38 and 39) towards the lungs. With `touching`, the left lung
// is moved against the right one (one connected lung field).
inline Phantom MakeChestPhantom(bool touching) {
  Phantom p;
  Volume& v = p.volume;
  v.dims = {128, 128, 60};
  v.spacing = {2, 2, 5};
  v.origin = {-128, -128, 0};
  v.modality = "CT";
  v.units = "HU";
  v.voxels.assign(v.VoxelCount(), -1000.0f);
  p.voxel_ml = 2.0 * 2.0 * 5.0 / 1000.0;
  p.right = {40, 62, 25, 18, 25, 20};
  p.left = {touching ? 75.0 : 88.0, 62, 25, 16, 25, 20};
  p.emphysema = {40, 62, 25, 6, 6, 2.4};
  for (int z = 0; z < 60; ++z) {
    for (int y = 0; y < 128; ++y) {
      for (int x = 0; x < 128; ++x) {
        float hu = -1000;
        const double bx = (x - 64) / 55.0, by = (y - 64) / 45.0;
        if (bx * bx + by * by <= 1) hu = 40;
        if (p.right.Contains(x, y, z) || p.left.Contains(x, y, z)) hu = -850;
        if (p.emphysema.Contains(x, y, z)) hu = -980;
        auto in_tube = [&](double cx, double cy, double r) { return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r; };
        if (z >= 40 && in_tube(64, 50, 6)) hu = -1000;                                       // trachea
        if (z >= 38 && z < 40 && (in_tube(57, 51, 4) || in_tube(71, 51, 4))) hu = -1000;     // main bronchi
        v.voxels[(static_cast<std::size_t>(z) * 128 + y) * 128 + x] = hu;
      }
    }
  }
  return p;
}

// Face-connected components by breadth-first search; labels = smallest index + 1.
inline std::vector<int32_t> ReferenceLabels(const std::vector<uint8_t>& mask, Grid g, bool connect_slices) {
  std::vector<int32_t> labels(mask.size(), 0);
  const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
  std::deque<std::size_t> queue;
  for (std::size_t seed = 0; seed < mask.size(); ++seed) {
    if (!mask[seed] || labels[seed]) continue;
    const auto label = static_cast<int32_t>(seed + 1);
    labels[seed] = label;
    queue.push_back(seed);
    while (!queue.empty()) {
      const std::size_t i = queue.front();
      queue.pop_front();
      const int x = static_cast<int>(i % g.nx), y = static_cast<int>((i / g.nx) % g.ny), z = static_cast<int>(i / plane);
      auto visit = [&](std::size_t j) {
        if (mask[j] && !labels[j]) {
          labels[j] = label;
          queue.push_back(j);
        }
      };
      if (x > 0) visit(i - 1);
      if (x + 1 < g.nx) visit(i + 1);
      if (y > 0) visit(i - g.nx);
      if (y + 1 < g.ny) visit(i + g.nx);
      if (connect_slices && z > 0) visit(i - plane);
      if (connect_slices && z + 1 < g.nz) visit(i + plane);
    }
  }
  return labels;
}

// Random blobs: a mask with about `density` of its voxels set, smoothed so components are large
// and tangled (the hard case for union-find).
inline std::vector<uint8_t> RandomMask(Grid g, double density, unsigned seed) {
  std::mt19937 random(seed);
  std::bernoulli_distribution on(density);
  std::vector<uint8_t> mask(g.Count());
  for (auto& m : mask) m = on(random);
  return mask;
}

}  // namespace procnode::lung::testing
