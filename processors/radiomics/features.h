// IBSI chapter 1 radiomics features (Image Biomarker Standardisation Initiative reference manual,
// arXiv:1612.07003): the feature families computed on a region of interest, named by the tags the
// IBSI reference tables use (`stat_mean`, `cm_joint_max_2D_avg`, ...). This first part holds the
// families: morphology (3.1), local intensity (3.2), intensity statistics (IBSI 3.3), intensity histogram (3.4),
// intensity-volume histogram (3.5), grey level co-occurrence (3.6) and run length (3.7) matrices
// with the IBSI aggregations below, and the zone and neighbourhood matrices (3.8-3.11) with theirs:
//   _2D_avg     per slice and in-plane direction, features averaged over both;
//   _2D_comb    per slice the four directions merged, features averaged over slices;
//   _2_5D_avg   per in-plane direction all slices merged, features averaged over directions;
//   _2_5D_comb  all slices and in-plane directions merged into one matrix;
//   _3D_avg     per 3D direction (13), features averaged over directions;
//   _3D_comb    all 13 directions merged into one matrix.
// Slices are the third voxel axis; neighbours are at Chebyshev distance 1 and both voxels must lie
// in the region. Matrices are symmetric (GLCM). Logarithms are base 2. Undefined features (a
// constant region's correlation, an empty matrix) are left out of FeatureSet::values and listed in
// `undefined` with the reason, never NaN. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace procnode::radiomics {

// Which of the texture families' aggregations to compute: every one, the slice-wise ones (2D and
// 2.5D: IBSI's 2D configurations, and single images), or the volume's (3D).
enum class Aggregation { kAll, kTwoD, kThreeD };

// A region on a voxel grid (x fastest, then y, then slices): the intensities and, after
// discretisation, the grey levels 1..grey_levels (0 outside the region).
struct Region {
  std::array<std::size_t, 3> dims{0, 0, 0};
  std::vector<uint8_t> mask;       // non-zero: in the region
  std::vector<double> intensities; // one per voxel (used inside the region only)
  std::vector<int> levels;         // one per voxel; 1..grey_levels inside the region
  int grey_levels = 0;             // Ng
  std::array<double, 3> spacing{1, 1, 1};  // mm
  // The morphological mask (the region before re-segmentation), where distances to the border and
  // shape come from; empty: `mask`.
  std::vector<uint8_t> morphological_mask;
  Aggregation aggregation = Aggregation::kAll;
};

// The smallest box holding every non-zero voxel of `mask` on a grid of `dims` (x fastest): its
// first and last voxel per axis; nullopt when the mask is empty.
struct Box {
  std::array<std::size_t, 3> lo{}, hi{};
};
std::optional<Box> BoundingBox(const std::vector<uint8_t>& mask, const std::array<std::size_t, 3>& dims);

// One slice (z >= 0) or the whole region (z < 0) with a border of one empty voxel all round, so
// that a step to a neighbour never leaves the array and needs no bounds check: `levels` holds the
// region's grey levels (0 outside the region and in the border), `shape` (filled when asked) the
// morphological mask (distances to the border come from it). A slice's copy is one voxel deep:
// in-plane steps only.
struct PaddedLevels {
  long px = 0, py = 0, pz = 0;
  std::vector<int> levels;
  std::vector<uint8_t> shape;
  PaddedLevels(const Region& r, long z, bool with_shape);
  // The index step to the neighbour at `offset` (voxels along x, y, z).
  long Step(const std::array<int, 3>& offset) const { return (offset[2] * py + offset[1]) * px + offset[0]; }
  template <typename F>
  void ForEachInRegion(F&& f) const {  // f(index) for each voxel of the region, in the grid's order
    for (long p = 0; p < static_cast<long>(levels.size()); ++p) {
      if (levels[static_cast<std::size_t>(p)] > 0) f(p);
    }
  }
};

// Interpolation (IBSI 3.1.3) to `spacing` mm on a grid whose centre is the old grid's centre, with
// ceil(n x old spacing / new spacing) voxels per axis; `in_plane` keeps the slices (2D). The image
// is interpolated linearly (or by a cubic B-spline, `cubic`), values past the old grid take the
// nearest edge's, and are rounded to integers where `round` (CT); the mask is interpolated
// linearly and kept where at least `partial_volume` (0.5).
struct Interpolation {
  std::array<double, 3> spacing{2, 2, 2};
  bool in_plane = false;
  bool cubic = false;
  bool round = true;
  double partial_volume = 0.5;
  // When set: only the new voxels within this many mm (rounded up to whole voxels, plus one) of
  // the box the region can reach on the new grid are computed; the rest stay empty (mask 0,
  // intensity 0). For a caller that cuts the region out afterwards with that margin: the same
  // values, without interpolating the whole image.
  std::optional<double> near_region_mm;
};
Region Interpolate(const Region& region, const Interpolation& how);

// Whole voxels along each axis covering `mm`, plus one: the margin kept around a region.
std::array<std::size_t, 3> VoxelsCovering(double mm, const std::array<double, 3>& spacing);

// Outlier filtering (IBSI 3.1.4): voxels further than `sigmas` standard deviations from the
// region's mean leave the intensity mask.
void FilterOutliers(Region& region, double sigmas);

// Re-segmentation (IBSI 3.1.4): voxels outside [low, high] leave the intensity mask; the
// morphological mask keeps the region as it was. Either bound may be infinite.
void Resegment(Region& region, double low, double high);

// Discretisation (IBSI 3.1.6) of the intensities inside the mask into `levels`:
// fixed bin size: level = floor((x - origin) / width) + 1, Ng the highest level in the region
// (origin: the re-segmentation range's lower bound, or the region's minimum when there is none);
// fixed bin number: level = floor(bins (x - min) / (max - min)) + 1, the maximum in the last bin.
void DiscretiseFixedBinSize(Region& region, double width, double origin);
void DiscretiseFixedBinNumber(Region& region, int bins);

struct FeatureSet {
  std::map<std::string, double> values;          // tag -> value
  std::map<std::string, std::string> undefined;  // tag -> why it has no value
  void Set(const std::string& tag, double value);  // a non-finite value goes to `undefined`
};

// Local intensity peaks (IBSI 3.2, loc_*): the mean intensity of every image voxel whose centre
// lies within a 1 cm3 sphere (radius 6.2 mm) of a region voxel; local: around the region's most
// intense voxel (the highest such mean if several), global: the highest over the region.
void LocalIntensityFeatures(const Region& region, FeatureSet& out);

// The morphological features that need no surface mesh (IBSI 3.1, morph_*): the voxel-counting
// volume, the centre of mass shift (morphological mask's geometric centre to the intensity mask's
// intensity-weighted one) and the principal component axes of the morphological mask's voxel
// centres (major, minor and least axis lengths 4 sqrt(eigenvalue), elongation, flatness).
void MorphologyFeatures(const Region& region, FeatureSet& out);

// The mesh-based morphological features (mesh.cc): marching cubes on the morphological mask at 0.5
// gives the volume and area and their ratios (av, comp_1, comp_2, sph_dispr, sphericity,
// asphericity); the axis-aligned bounding box, the approximate enclosing ellipsoid (semi-axes from
// the PCA axes, so MorphologyFeatures must have run) and the convex hull (qhull) give the volume
// and area densities and the maximum diameter; the integrated intensity is the mesh volume times
// the mean intensity. The oriented bounding box and the minimum volume enclosing ellipsoid, which
// IBSI leaves unstandardised, are not computed.
void MeshMorphologyFeatures(const Region& region, FeatureSet& out);

// Moran's I and Geary's C (morph_moran_i, morph_geary_c) over every pair of voxels of the intensity
// mask, weighted by the inverse of their distance in mm; exact, through an FFT convolution.
void AutocorrelationFeatures(const Region& region, FeatureSet& out);

// Intensity statistics (stat_*) of the region's intensities. Percentiles interpolate linearly
// between order statistics (index p/100 x (N - 1)), as IBSI's reference values were made.
void IntensityStatistics(const Region& region, FeatureSet& out);

// Intensity histogram (ih_*) of the region's grey levels over 1..grey_levels.
void IntensityHistogram(const Region& region, FeatureSet& out);

// How the intensity-volume histogram reads intensities (IBSI 3.5), over `low`..`high` (the
// re-segmentation range): intensities already discrete in steps of `bin_width` (CT in HU: 1) are
// their own values; otherwise (`discretise`) they fall in bins of `bin_width` from `low`, each
// represented by its centre (IBSI's configuration C: 2.5 HU).
struct IvhBins {
  double low = 0, high = 0, bin_width = 1;
  bool discretise = false;
};

// Intensity-volume histogram (ivh_*): V10/V90 the volume fraction at or above 10 %/90 % of the
// range, I10/I90 the lowest intensity whose fraction at or above it is at most 10 %/90 % (in
// intensity units), their differences, and the area under the curve. Without `bins`: over the
// grey levels 1..grey_levels.
void IntensityVolumeHistogram(const Region& region, FeatureSet& out, const std::optional<IvhBins>& bins = std::nullopt);

// Grey level co-occurrence matrix features (cm_*), every aggregation.
void CooccurrenceFeatures(const Region& region, FeatureSet& out);

// Grey level run length matrix features (rlm_*), every aggregation.
void RunLengthFeatures(const Region& region, FeatureSet& out);

// Zone and neighbourhood families (zones.cc), each as _2D (per slice, averaged), _2_5D (slices
// merged) and _3D: grey level size zones (szm_*), distance zones (dzm_*), neighbourhood grey tone
// differences (ngt_*), neighbouring grey level dependence (ngl_*, alpha 0).
void SizeZoneFeatures(const Region& region, FeatureSet& out);
void DistanceZoneFeatures(const Region& region, FeatureSet& out);
void ToneDifferenceFeatures(const Region& region, FeatureSet& out);
void DependenceFeatures(const Region& region, FeatureSet& out);

}  // namespace procnode::radiomics
