// DICOM SR Measurement Report (PS3.16 TID 1500) through DCMTK's cmr templates: one Volumetric ROI
// Measurements group (TID 1411) per measured segment, with tracking identifier and UID, finding,
// finding site, the referenced SEG segment and the source series; each measurement a coded
// concept with a UCUM unit; language en-US (RFC 5646), the device observer (procnode and the
// processor), an image library of the source images, and the evidence (source images and the
// SEG). Written as Enhanced SR; private concepts use the coding scheme "99PROCNODE", declared in
// the Coding Scheme Identification Sequence. Patient and study from the source; manufacturer
// "procnode". Errors from DCMTK are Error(kInternal) naming what failed. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/coded.h"
#include "processors/series_volume.h"
#include "results/segmentation.h"

namespace procnode {

struct SrMeasurementGroup {
  std::string tracking_id;               // human-readable, e.g. "right lung"
  std::string tracking_uid;
  Code finding;
  std::optional<Code> finding_site;
  int segment_number = 0;                // in the SEG
  std::vector<CodedMeasurement> measurements;
};

struct MeasurementReportSpec {
  StudyIdentity study;
  std::string series_instance_uid, sop_instance_uid;
  int series_number = 9003;
  std::string series_description;
  std::string modality_of_sources = "CT";
  std::string source_series_instance_uid;
  std::vector<SourceInstance> sources;
  std::string segmentation_sop_instance_uid;
  std::string segmentation_series_instance_uid;
  std::string device_observer_uid, device_observer_name, processor_name, software_version;
  std::vector<SrMeasurementGroup> groups;
};

std::string MakeMeasurementReport(const MeasurementReportSpec& spec);

}  // namespace procnode
