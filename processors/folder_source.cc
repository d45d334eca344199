#include "processors/folder_source.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/digest.h"
#include "core/error.h"

namespace procnode {

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::kNotFound, path + ": cannot be opened");
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw Error(ErrorCode::kNotFound, path + ": cannot be read");
  }
  return bytes;
}

FolderStudySource::FolderStudySource(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error(ErrorCode::kNotFound, folder + ": not a directory");
  std::vector<std::string> paths;
  for (const auto& entry : fs::recursive_directory_iterator(folder, ec)) {
    if (entry.is_regular_file()) paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::map<std::string, SeriesRef> by_uid;
  for (const auto& path : paths) {
    DcmFileFormat file;
    // Everything needed here precedes (0020,000F): stop there instead of parsing the whole header.
    const OFCondition status = file.loadFileUntilTag(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                                     ERM_autoDetect, DcmTagKey(0x0020, 0x000F));
    OFString uid, modality, manufacturer;
    DcmDataset& ds = *file.getDataset();
    if (status.bad() || ds.findAndGetOFString(DCM_SeriesInstanceUID, uid).bad() || uid.empty()) {
      skipped_.push_back(path + ": " + (status.bad() ? "not DICOM (" + std::string(status.text()) + ")" : "no SeriesInstanceUID"));
      continue;
    }
    ds.findAndGetOFString(DCM_Modality, modality);
    ds.findAndGetOFString(DCM_Manufacturer, manufacturer);
    SeriesRef& series = by_uid[uid.c_str()];
    if (series.id.empty()) {
      series.id = HashForLog(uid.c_str());
      series.modality = modality.c_str();
      series.produced_by_procnode = manufacturer == kResultManufacturer;
    }
    series.instance_ids.push_back(path);
  }
  for (auto& [uid, series] : by_uid) series_.push_back(std::move(series));
}

std::vector<SeriesRef> FolderStudySource::ListSeries(const std::string&) { return series_; }

std::string FolderStudySource::FetchInstance(const std::string& instance_id) {
  return ReadFileBytes(instance_id);
}

}  // namespace procnode
