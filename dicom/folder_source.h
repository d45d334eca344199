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
  std::vector<uint32_t> private_elements;  // when not empty: of those groups only these elements (sorted) and the creators
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

  // Where a larger file's native pixels lie (found by the scan in the file's first bytes), and the
  // file's size and modification time then. Thread-safe.
  struct PixelLocation {
    std::size_t offset = 0, length = 0;
    std::uintmax_t file_size = 0;
    int64_t modified_ns = 0, changed_ns = 0;  // st_mtim, st_ctim
    uint64_t inode = 0;
  };
  std::optional<PixelLocation> PixelLocationOf(const std::string& instance_id) const;

  // The dataset of a larger file parsed from the bytes before its PixelData, which the scan kept
  // (the PixelData element present, empty: the pixels are read with ReadPixels); once; nullptr
  // when none was kept. Thread-safe.
  std::unique_ptr<DcmFileFormat> TakeHead(const std::string& instance_id);

  // Reads `bytes` of the pixels at `at` into `out`. Error(kInvalidInput) naming the file when it
  // changed since the scan (size, inode, modification or status change time) or ends early; kNotFound when unreadable.
  static void ReadPixels(const std::string& path, const PixelLocation& at, char* out, std::size_t bytes);

  // Small files are read whole by the scan and their bytes kept (up to a bound), so that reading
  // them again costs no disk access: this parses one from them and lets the bytes go, once
  // (nullptr when it was not kept). Errors as ReadDicomBuffer's. Thread-safe.
  std::unique_ptr<DcmFileFormat> TakeParsed(const std::string& instance_id);

  ~FolderStudySource() override;

 private:
  // Hands over (once) the bytes kept for an instance in `kept` (kept_ or heads_).
  std::optional<std::string> TakeKept(std::map<std::string, std::string>& kept, const std::string& instance_id);

  std::vector<SeriesRef> series_;
  std::vector<std::string> skipped_;
  std::mutex kept_mutex_;
  std::map<std::string, std::string> kept_;
  std::map<std::string, std::string> heads_;               // under kept_mutex_
  std::map<std::string, PixelLocation> pixel_locations_;  // not changed after construction
};

// Reads a whole file; Error(kNotFound) naming it when it cannot be opened or read.
std::string ReadFileBytes(const std::string& path);

// Reads a whole file into `bytes` (whose capacity is reused); false when it cannot be opened or read.
bool ReadFileInto(const std::string& path, std::string& bytes);

}  // namespace procnode
