#include "cli/mask_regions.h"

#include <cmath>
#include <map>

#include "core/error.h"
#include "nifti/nifti1.h"

namespace procnode::cli {

std::vector<RegionMask> MaskRegions(const std::string& path, const Volume& volume) {
  const Volume mask = VolumeFromNifti(ReadNiftiFile(path));
  // Each series voxel's centre in the mask's voxel indices: the same lattice in any axis order
  // or direction (another tool's NIfTI of the series), else refused.
  const std::array<const std::array<double, 3>*, 3> axes{&mask.row_direction, &mask.column_direction, &mask.slice_direction};
  const std::array<const std::array<double, 3>*, 3> ours{&volume.row_direction, &volume.column_direction, &volume.slice_direction};
  std::array<double, 3> base{}, step_i{}, step_j{}, step_k{};
  for (int a = 0; a < 3; ++a) {
    auto along = [&](const std::array<double, 3>& d) { return ((*axes[a])[0] * d[0] + (*axes[a])[1] * d[1] + (*axes[a])[2] * d[2]) / std::abs(mask.spacing[a]); };
    base[a] = along({volume.origin[0] - mask.origin[0], volume.origin[1] - mask.origin[1], volume.origin[2] - mask.origin[2]});
    std::array<double, 3> di{}, dj{}, dk{};
    for (int c = 0; c < 3; ++c) {
      di[c] = (*ours[0])[c] * volume.spacing[0], dj[c] = (*ours[1])[c] * volume.spacing[1], dk[c] = (*ours[2])[c] * volume.spacing[2];
    }
    step_i[a] = along(di), step_j[a] = along(dj), step_k[a] = along(dk);
  }
  auto off_lattice = [](double x) { return std::abs(x - std::round(x)) > 0.1; };
  for (int a = 0; a < 3; ++a) {
    // An axis of one voxel takes no step along it (a single image): its step need not fit.
    if (off_lattice(base[a]) || (volume.dims[0] > 1 && off_lattice(step_i[a])) || (volume.dims[1] > 1 && off_lattice(step_j[a])) ||
        (volume.dims[2] > 1 && off_lattice(step_k[a]))) {
      throw Error(ErrorCode::kInvalidInput, path + ": the mask is not on the series' voxel grid (its voxels do not coincide with "
                                                   "the series' in position and size)");
    }
  }
  // On the lattice: whole steps, so each voxel's mask index is integer arithmetic.
  std::array<long, 3> first{}, di{}, dj{}, dk{};
  for (int a = 0; a < 3; ++a) {
    first[a] = std::lround(base[a]);
    di[a] = volume.dims[0] > 1 ? std::lround(step_i[a]) : 0;
    dj[a] = volume.dims[1] > 1 ? std::lround(step_j[a]) : 0;
    dk[a] = volume.dims[2] > 1 ? std::lround(step_k[a]) : 0;
  }
  const std::array<long, 3> size{static_cast<long>(mask.dims[0]), static_cast<long>(mask.dims[1]), static_cast<long>(mask.dims[2])};
  std::map<int, std::vector<uint8_t>> labels;
  std::size_t outside = 0;
  for (std::size_t k = 0; k < volume.dims[2]; ++k) {
    for (std::size_t j = 0; j < volume.dims[1]; ++j) {
      std::array<long, 3> m{};
      for (int a = 0; a < 3; ++a) m[a] = first[a] + static_cast<long>(j) * dj[a] + static_cast<long>(k) * dk[a];
      for (std::size_t i = 0; i < volume.dims[0]; ++i, m[0] += di[0], m[1] += di[1], m[2] += di[2]) {
        if (m[0] < 0 || m[1] < 0 || m[2] < 0 || m[0] >= size[0] || m[1] >= size[1] || m[2] >= size[2]) {
          ++outside;
          continue;
        }
        const float value = mask.voxels[static_cast<std::size_t>((m[2] * size[1] + m[1]) * size[0] + m[0])];
        if (value == 0) continue;
        const int label = static_cast<int>(std::lround(value));
        if (label == 0) continue;
        auto& voxels = labels[label];
        if (voxels.empty()) voxels.assign(volume.VoxelCount(), 0);
        voxels[(k * volume.dims[1] + j) * volume.dims[0] + i] = 1;
      }
    }
  }
  if (outside == volume.VoxelCount()) throw Error(ErrorCode::kInvalidInput, path + ": the mask does not overlap the series");
  std::vector<RegionMask> regions;
  for (auto& [label, voxels] : labels) regions.push_back({"label " + std::to_string(label), "NIfTI mask", std::move(voxels)});
  if (regions.empty()) throw Error(ErrorCode::kInvalidInput, path + ": the mask is empty");
  return regions;
}

}  // namespace procnode::cli
