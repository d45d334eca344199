// Radiomics extraction as IBSI chapter 1 lays it out: the image and region as given, then
// interpolation, re-segmentation (range and outliers), discretisation, and every feature family,
// with the settings of IBSI's reference configurations A-E as presets (each setting overridable).
// Pure; thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "processors/radiomics/features.h"

namespace procnode::radiomics {

struct Settings {
  std::optional<Interpolation> interpolation;            // none: the native grid
  std::optional<std::pair<double, double>> range;        // re-segmentation range
  std::optional<double> outlier_sigmas;                  // outlier filtering (after the range)
  enum class Discretisation { kBinSize, kBinNumber } discretisation = Discretisation::kBinSize;
  double bin_width = 25;                                 // fixed bin size (origin: the range's low bound, else the minimum)
  int bin_number = 32;                                   // fixed bin number
  // The intensity-volume histogram's bins: intensities as they are in steps of `ivh_bin_width`
  // over the re-segmentation range (else the region's range), in bins of that width
  // (`ivh_discretise`), or a fixed number of bins (`ivh_bin_number` > 0: I10/I90 are bin numbers).
  double ivh_bin_width = 1;
  bool ivh_discretise = false;
  int ivh_bin_number = 0;
  // The feature families to compute, by tag prefix ("morph", "loc", "stat", "ih", "ivh", "cm",
  // "rlm", "szm", "dzm", "ngt", "ngl"); empty: every one.
  std::set<std::string> families;
  Aggregation aggregation = Aggregation::kAll;  // the texture families' aggregations
};

// The families' tag prefixes, in the order they are computed.
const std::vector<std::string>& FamilyNames();

// IBSI 1's reference configurations (CT phantom): 'A' 2D native grid, [-500, 400] HU, bin size 25;
// 'B' 2D 2 x 2 mm bilinear, [-500, 400] HU, 32 bins; 'C' 3D 2 mm trilinear, [-1000, 400] HU, bin
// size 25 (IVH in 2.5 HU bins); 'D' 3D 2 mm trilinear, outliers beyond 3 SD, 32 bins; 'E' 3D 2 mm
// cubic B-spline, [-1000, 400] HU and outliers, 32 bins (IVH in 1000 bins). Intensities rounded
// after interpolation. Error(kInvalidInput) for another letter.
Settings Configuration(const std::string& letter);

// Every feature family on a region already processed and discretised; the intensity-volume
// histogram over `ivh` bins, or over `ivh_levels`' grey levels where given (a fixed bin number).
// `families` as in Settings (empty: every one).
void AllFamilies(const Region& region, FeatureSet& out, const std::optional<IvhBins>& ivh = std::nullopt,
                 const Region* ivh_levels = nullptr, const std::set<std::string>& families = {});

// Every feature of the region after the settings' image processing.
FeatureSet Extract(const Region& region, const Settings& settings);

}  // namespace procnode::radiomics
