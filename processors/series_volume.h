// Builds an in-memory Volume from one series of a StudySource, through DCMTK.
//
// Reads every instance of the series, decodes the pixel data (uncompressed transfer syntaxes, and
// the JPEG family, JPEG-LS and RLE through DCMTK's decoders), applies Rescale Slope/Intercept so
// voxels are in modality units, sorts slices along the slice normal (PS3.3 C.7.6.2.1.1: position
// projected on row x column) and checks that rows, columns and orientation agree.
//
// Errors name the instance (its id in the StudySource) and the reason: Error(kInvalidInput) for
// malformed or inconsistent data, Error(kUnsupported) for what this version cannot decode (JPEG
// 2000, colour, packed bits). The returned StudyIdentity holds patient and study attributes
// copied from the first instance, for result objects of a clinical route: it is PHI, keep it out
// of logs. Not thread-safe per call; separate calls may run concurrently.
#pragma once

#include <functional>
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

struct SourceInstance {
  std::string sop_class_uid;
  std::string sop_instance_uid;
};

struct SeriesVolume {
  Volume volume;
  StudyIdentity study;
  std::string series_instance_uid;
  std::vector<SourceInstance> sources;  // in slice order
  std::vector<std::string> warnings;    // safe to show: no PHI
};

struct LoadCallbacks {
  std::function<void(std::size_t done, std::size_t total)> progress;  // optional
  std::function<bool()> cancelled;  // optional; when it returns true: Error(kCancelled)
};

SeriesVolume LoadSeriesVolume(StudySource& source, const SeriesRef& series,
                              const LoadCallbacks& callbacks = {});

// The Patient and General Study attributes of one instance (PHI: keep it out of logs and files).
StudyIdentity ReadStudyIdentity(StudySource& source, const std::string& instance_id);

// The series with the most instances among those not produced by procnode, or Error(kNotFound).
const SeriesRef& LargestInputSeries(const std::vector<SeriesRef>& series);

}  // namespace procnode
