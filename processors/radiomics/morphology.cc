// IBSI 3.1 morphological features that need no mesh.
#include <cmath>
#include <utility>

#include "core/error.h"
#include "processors/radiomics/features.h"

namespace procnode::radiomics {
namespace {

// Eigenvalues of a symmetric 3x3 matrix, largest first (cyclic Jacobi rotations).
std::array<double, 3> SymmetricEigenvalues(std::array<std::array<double, 3>, 3> a) {
  for (int sweep = 0; sweep < 50; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    if (off < 1e-30) break;
    for (int p = 0; p < 2; ++p) {
      for (int q = p + 1; q < 3; ++q) {
        if (std::abs(a[p][q]) < 1e-300) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {  // A <- A J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {  // A <- J^T A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  std::array<double, 3> values{a[0][0], a[1][1], a[2][2]};
  if (values[0] < values[1]) std::swap(values[0], values[1]);
  if (values[1] < values[2]) std::swap(values[1], values[2]);
  if (values[0] < values[1]) std::swap(values[0], values[1]);
  return values;
}

}  // namespace

void MorphologyFeatures(const Region& region, FeatureSet& out) {
  const std::vector<uint8_t>& shape = region.morphological_mask.empty() ? region.mask : region.morphological_mask;
  const std::size_t nx = region.dims[0], ny = region.dims[1], nz = region.dims[2];
  if (shape.size() != nx * ny * nz) throw Error(ErrorCode::kInvalidInput, "radiomics: the region does not match its grid");
  double n = 0, weight = 0;
  std::array<double, 3> centre{0, 0, 0}, weighted{0, 0, 0};
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t v = (k * ny + j) * nx + i;
        const std::array<double, 3> p{i * region.spacing[0], j * region.spacing[1], k * region.spacing[2]};
        if (shape[v]) {
          n += 1;
          for (int a = 0; a < 3; ++a) centre[a] += p[a];
        }
        if (region.mask[v]) {
          weight += region.intensities[v];
          for (int a = 0; a < 3; ++a) weighted[a] += region.intensities[v] * p[a];
        }
      }
    }
  }
  if (n == 0) throw Error(ErrorCode::kInvalidInput, "radiomics: the region is empty");
  for (int a = 0; a < 3; ++a) centre[a] /= n;
  out.Set("morph_vol_approx", n * region.spacing[0] * region.spacing[1] * region.spacing[2]);
  if (weight != 0) {
    double shift = 0;
    for (int a = 0; a < 3; ++a) shift += (weighted[a] / weight - centre[a]) * (weighted[a] / weight - centre[a]);
    out.Set("morph_com", std::sqrt(shift));
  } else {
    out.Set("morph_com", NAN);
  }
  std::array<std::array<double, 3>, 3> covariance{};
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        if (!shape[(k * ny + j) * nx + i]) continue;
        const std::array<double, 3> d{i * region.spacing[0] - centre[0], j * region.spacing[1] - centre[1],
                                      k * region.spacing[2] - centre[2]};
        for (int a = 0; a < 3; ++a) {
          for (int b = 0; b < 3; ++b) covariance[a][b] += d[a] * d[b] / std::max(1.0, n - 1);  // sample covariance, as IBSI
        }
      }
    }
  }
  const auto lambda = SymmetricEigenvalues(covariance);
  out.Set("morph_pca_maj_axis", 4 * std::sqrt(std::max(0.0, lambda[0])));
  out.Set("morph_pca_min_axis", 4 * std::sqrt(std::max(0.0, lambda[1])));
  out.Set("morph_pca_least_axis", 4 * std::sqrt(std::max(0.0, lambda[2])));
  out.Set("morph_pca_elongation", lambda[0] > 0 ? std::sqrt(std::max(0.0, lambda[1]) / lambda[0]) : NAN);
  out.Set("morph_pca_flatness", lambda[0] > 0 ? std::sqrt(std::max(0.0, lambda[2]) / lambda[0]) : NAN);
}

}  // namespace procnode::radiomics
