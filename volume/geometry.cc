#include "volume/geometry.h"

#include <sstream>

namespace procnode {

std::string ShortNumber(double value) {
  std::ostringstream out;
  out.precision(4);
  out << value;
  return out.str();
}

Reorientation NearestOrthogonal(const Affine& m) {
  Reorientation r;
  r.axis_of_world = {-1, -1, -1};
  std::array<bool, 3> used{false, false, false};
  for (int pass = 0; pass < 3; ++pass) {  // greedy by largest cosine, so every axis is used once
    double best = -1;
    int best_world = 0, best_axis = 0;
    for (int world = 0; world < 3; ++world) {
      if (r.axis_of_world[world] >= 0) continue;
      for (int axis = 0; axis < 3; ++axis) {
        if (used[axis]) continue;
        const double length = std::hypot(m[0][axis], m[1][axis], m[2][axis]);
        const double cosine = std::abs(m[world][axis]) / (length > 0 ? length : 1);
        if (cosine > best) best = cosine, best_world = world, best_axis = axis;
      }
    }
    r.axis_of_world[best_world] = best_axis;
    used[best_axis] = true;
  }
  for (int w = 0; w < 3; ++w) r.flip[w] = m[w][r.axis_of_world[w]] < 0;
  r.identity = r.axis_of_world == std::array<int, 3>{0, 1, 2} && !r.flip[0] && !r.flip[1] && !r.flip[2];
  return r;
}

}  // namespace procnode
