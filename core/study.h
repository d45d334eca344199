// What a study looks like to the pipeline, and the two ports it talks through.
//
// StudySource: where instances come from (Orthanc's REST API in the plugin, a folder in the CLI).
// ResultSink: where result objects go (Orthanc's /instances in the plugin, a folder in the CLI).
// FetchInstance() may be called from several threads at once (series are read in parallel);
// ListSeries() from one thread at a time. The plugin creates one source per job. Identifiers are opaque to the pipeline (Orthanc IDs, or file paths for the folder source)
// and are safe to log: they never contain patient identity.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace procnode {

// One series of a study, as listed by a StudySource.
struct SeriesRef {
  std::string id;                          // Orthanc series ID, or a folder source's key
  std::string modality;                    // (0008,0060)
  std::vector<std::string> instance_ids;   // opaque; passed back to FetchInstance
  bool produced_by_procnode = false;       // our own result series: never an input (no loops)
  std::string grouping_warning;            // how a folder grouped files that lack a SeriesInstanceUID
};

// The manufacturer written into every procnode result; a series with it is never an input.
inline constexpr const char* kResultManufacturer = "procnode";

class StudySource {
 public:
  virtual ~StudySource() = default;
  // Lists the study's series. Throws Error(kNotFound) when the study is gone,
  // Error(kUnavailable) when the source cannot be reached.
  virtual std::vector<SeriesRef> ListSeries(const std::string& study_id) = 0;
  // The DICOM Part 10 bytes of one instance. Same errors as ListSeries.
  virtual std::string FetchInstance(const std::string& instance_id) = 0;
  // A local file holding the instance, when there is one (readers then parse it in place instead
  // of copying it through memory); empty otherwise.
  virtual std::string InstancePath(const std::string& /*instance_id*/) { return ""; }
  // Whether reading an instance a second time costs little (local files, Orthanc's own storage):
  // a reader may then take headers first and pixels later, holding less in memory. False for a
  // source that would fetch each instance over the network again.
  virtual bool RereadIsCheap() { return false; }
  // An instance's top-level attribute values as text by tag (group << 16 | element), without its
  // pixel data, when the source can give them cheaply (Orthanc can); nullopt otherwise.
  virtual std::optional<std::map<uint32_t, std::string>> InstanceAttributes(const std::string& /*instance_id*/) {
    return std::nullopt;
  }
};

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // Stores one DICOM Part 10 object (storing the same SOP Instance UID again must not create a
  // second copy) and returns where it went (an Orthanc instance ID, a path).
  virtual std::string Store(const std::string& dicom_bytes, const std::string& file_stem) = 0;
};

}  // namespace procnode
