// Geometry of image planes: vectors in patient space (LPS, mm), and the nearest orthogonal
// orientation of an affine (dcm2niix's rotation of 3D acquisitions). Pure, header-light.
#pragma once

#include <array>
#include <cmath>
#include <string>

namespace procnode {

using Vec3 = std::array<double, 3>;
using Affine = std::array<std::array<double, 4>, 3>;  // rows of a 3 x 4 voxel-to-world matrix

inline Vec3 Cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double Dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline double Norm(const Vec3& a) { return std::sqrt(Dot(a, a)); }

// `value` with 4 significant digits, for messages ("1.25", "0.3333").
std::string ShortNumber(double value);

// dcm2niix's rotation of 3D acquisitions: voxel axis w of the output runs along world axis w
// (RAS), increasing; the nearest orthogonal orientation to the acquired one.
struct Reorientation {
  std::array<int, 3> axis_of_world{0, 1, 2};  // input voxel axis feeding output axis w
  std::array<bool, 3> flip{false, false, false};
  bool identity = true;
};

Reorientation NearestOrthogonal(const Affine& m);

}  // namespace procnode
