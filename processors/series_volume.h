// A series as the processors see it: its Volume (built by nifti/ NiftiSeriesVolume, through the
// same converter as the NIfTI files), the study identity of its first instance for result objects
// of a clinical route (PHI: keep it out of logs and files), and its source instances; plus the
// helpers that pick and read them. Thread-safe.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/study.h"
#include "core/volume.h"

namespace procnode {

// Patient and General Study module attributes (PS3.3 C.7.1.1, C.7.2.1) of the source study,
// copied verbatim (in the source's character set) into result objects. PHI.
struct StudyIdentity {
  std::string specific_character_set;
  std::string patient_name, patient_id, patient_birth_date, patient_sex;
  std::string study_instance_uid, study_date, study_time, referring_physician_name, study_id,
      accession_number;
};

// One source instance and its image plane, for result objects that reference it frame by frame (SEG).
struct SourceInstance {
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::string frame_of_reference_uid;
  long rows = 0, columns = 0, frames = 1;
  std::optional<std::array<double, 3>> position;     // ImagePositionPatient (single-frame images)
  std::optional<std::array<double, 6>> orientation;  // ImageOrientationPatient
  std::array<double, 2> pixel_spacing{1, 1};          // row spacing, column spacing
  double slice_thickness = 0;
};

struct SeriesVolume {
  Volume volume;
  StudyIdentity study;
  std::string series_instance_uid;
  std::vector<SourceInstance> sources;  // in slice order
  std::vector<std::string> warnings;    // safe to show: no PHI
  nlohmann::json sidecar;               // the converter's BIDS sidecar of the part used (no PHI)
  // The first instance's acquisition attributes that derived images repeat, by keyword
  // ("EchoTime" -> "2.98"): a whitelist without PHI (results/derived_series.h).
  std::map<std::string, std::string> acquisition;
};

struct LoadCallbacks {
  // Optional: `done` of `total` steps. A step is one instance read; a converter that reads a series
  // in two passes (headers, then pixels) counts two per instance.
  std::function<void(std::size_t done, std::size_t total)> progress;
  std::function<bool()> cancelled;  // optional; when it returns true: Error(kCancelled)
};


// The Patient and General Study attributes of one instance (PHI: keep it out of logs and files),
// and those of `acquisition_keywords` it holds (empty values left out).
StudyIdentity ReadStudyIdentity(StudySource& source, const std::string& instance_id,
                                const std::vector<std::string>& acquisition_keywords = {},
                                std::map<std::string, std::string>* acquisition = nullptr);

// The acquisition keywords SeriesVolume::acquisition holds: the MR Image and CT Image modules'
// physics and the series' patient position and body part (none identifies anyone: PS3.15 E.1-1
// keeps them all).
const std::vector<std::string>& AcquisitionKeywords();

// The series with the most instances among those not produced by procnode, or Error(kNotFound).
const SeriesRef& LargestInputSeries(const std::vector<SeriesRef>& series);

}  // namespace procnode
