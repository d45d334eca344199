// Orthanc-backed implementations of the pipeline's ports, over Orthanc's REST API (the
// OrthancRest port: in process through the plugin SDK, or over HTTP from a standalone worker).
//
// OrthancStudySource lists a study's series (GET /studies/{id}/series) and marks those whose
// Manufacturer is procnode's as our own results; it fetches instances by Orthanc ID
// (GET /instances/{id}/file). OrthancResultSink stores objects with POST /instances; storing an
// SOP Instance UID that exists already is reported as such by Orthanc and adds no copy.
#pragma once

#include "core/study.h"
#include "orthanc/orthanc_rest.h"

namespace procnode {

class OrthancStudySource : public StudySource {
 public:
  explicit OrthancStudySource(OrthancRest& rest) : rest_(rest) {}
  std::vector<SeriesRef> ListSeries(const std::string& study_id) override;
  std::string FetchInstance(const std::string& instance_id) override;
  bool RereadIsCheap() override { return true; }  // from Orthanc's storage area, in process
  // One series by Orthanc ID (GET /series/{id}); Error(kNotFound) when unknown.
  // `parent_study`, when given, gets the series' study (ParentStudy) from the same answer.
  SeriesRef GetSeries(const std::string& series_id, std::string* parent_study = nullptr);
  // Top-level string and number attributes from GET /instances/{id}/tags?short (no pixel data).
  std::optional<std::map<uint32_t, std::string>> InstanceAttributes(const std::string& instance_id) override;
  // An instance's metadata (RemoteAET, CalledAET, ...); empty when Orthanc has none.
  std::string InstanceMetadata(const std::string& instance_id, const std::string& name);

 private:
  OrthancRest& rest_;
};

class OrthancResultSink : public ResultSink {
 public:
  explicit OrthancResultSink(OrthancRest& rest) : rest_(rest) {}
  std::string Store(const std::string& dicom_bytes, const std::string& file_stem) override;

 private:
  OrthancRest& rest_;
};

}  // namespace procnode
