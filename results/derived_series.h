// A derived image series (PS3.3 A.4 MR Image / A.3 CT Image, classic single-frame): one instance
// per source instance, on the source's own plane (sampled from the derived volume by nearest
// voxel, so a volume on the source's grid is written back exactly), same Frame of Reference,
// study and patient; ImageType DERIVED\SECONDARY\OTHER, DerivationDescription and
// DerivationCodeSequence (CID 7203), SourceImageSequence to the instance it replaces (purpose
// 121322 "Source image for image processing operation"). Values are stored as signed 16-bit with
// one RescaleSlope/Intercept for the series, chosen so that `precision` is kept (or, for 0, the
// finest step 16 bits allow over the values' range); a window covering the 1st to 99th percentile.
//
// Classic single-frame rather than Enhanced MR: every PACS and viewer shows them, the acquisition
// attributes the source carried are repeated per instance as the source had them, and SEG and SR
// already reference the source per instance. The acquisition attributes repeated (the MR Image
// and CT Image modules' physics: ScanningSequence, EchoTime, KVP, ...) come from
// SeriesVolume::acquisition (AcquisitionKeywords(), a whitelist without PHI). Needs single-frame MR or CT sources with
// plane geometry; otherwise Error(kUnsupported). Thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/coded.h"
#include "core/volume.h"
#include "processors/series_volume.h"

namespace procnode {

struct DerivedSeriesSpec {
  StudyIdentity study;
  std::string series_instance_uid;
  std::vector<std::string> sop_instance_uids;  // one per source instance
  int series_number = 9004;
  std::string series_description;
  std::string derivation_description;
  std::vector<Code> derivation_codes;
  std::vector<SourceInstance> sources;
  std::map<std::string, std::string> acquisition;  // keyword -> value, repeated in every instance
  std::string software_version;
  double precision = 0;
};

struct DerivedSeries {
  std::vector<std::string> instances;  // DICOM Part 10, in source order
  double rescale_slope = 1, rescale_intercept = 0;
};

// `values`: one per voxel of `volume` (the grid the values are on).
DerivedSeries MakeDerivedSeries(const DerivedSeriesSpec& spec, const Volume& volume, const std::vector<float>& values);

}  // namespace procnode
