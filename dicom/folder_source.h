// A StudySource over a folder of DICOM files (the CLI's input, and tests without Orthanc).
//
// The constructor walks the folder recursively and reads each file's header (up to
// SeriesInstanceUID; small files are read whole and kept, see TakeParsed). A reader that needs
// only some private groups (conversion) says so in FolderScanOptions and small files are parsed
// without the others. Files not readable as DICOM up to SeriesInstanceUID are skipped and listed
// by skipped() with the reason; a file damaged further on (truncated pixel data, say) joins its
// series, and reading it fails naming the file, as it does for every file, large or small. Series
// are grouped by SeriesInstanceUID; images without one by series number and modality, as dcm2niix
// groups them (SeriesRef::grouping_warning says so). Series ids are log-safe hashes of the UID;
// instance ids are the file paths. `folder` may also be one file. ListSeries() ignores its argument: the folder is the study. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/study.h"

class DcmFileFormat;

namespace procnode {

struct FolderScanOptions {
  // When set, the datasets that TakeParsed hands over hold no top-level private group but these
  // (WithoutPrivateGroups: a third less parsing on vendor-heavy files). FetchInstance and
  // InstancePath still give the files as they are.
  std::optional<std::vector<uint16_t>> private_groups;
};

class FolderStudySource : public StudySource {
 public:
  // Throws Error(kNotFound) when `folder` is neither a directory nor a file.
  explicit FolderStudySource(const std::string& folder, const FolderScanOptions& options = {});

  std::vector<SeriesRef> ListSeries(const std::string& study_id) override;
  std::string FetchInstance(const std::string& instance_id) override;
  std::string InstancePath(const std::string& instance_id) override { return instance_id; }
  bool RereadIsCheap() override { return true; }

  const std::vector<std::string>& skipped() const { return skipped_; }

  // Small files are read whole by the scan and their bytes kept (up to a bound), so that reading
  // them again costs no disk access: this parses one from them and lets the bytes go, once
  // (nullptr when it was not kept). Errors as ReadDicomBuffer's. Thread-safe.
  std::unique_ptr<DcmFileFormat> TakeParsed(const std::string& instance_id);

  ~FolderStudySource() override;

 private:
  std::vector<SeriesRef> series_;
  std::vector<std::string> skipped_;
  std::mutex kept_mutex_;
  std::map<std::string, std::string> kept_;
};

// Reads a whole file; Error(kNotFound) naming it when it cannot be opened or read.
std::string ReadFileBytes(const std::string& path);

// Reads a whole file into `bytes` (whose capacity is reused); false when it cannot be opened or read.
bool ReadFileInto(const std::string& path, std::string& bytes);

}  // namespace procnode
