#include "dicom/folder_source.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <map>

#include "core/digest.h"
#include "core/error.h"
#include "core/parallel.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "dicom/prefilter.h"

namespace procnode {

bool ReadFileInto(const std::string& path, std::string& bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat info {};
  bool ok = ::fstat(fd, &info) == 0;
  bytes.resize(ok ? static_cast<std::size_t>(info.st_size) : 0);
  std::size_t done = 0;
  while (ok && done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n >= 0;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);  // a file that shrank meanwhile is read as it now is
  return ok;
}

namespace {

// A plain file's attributes before its pixels fit in its first kHeadBytes, or else kLongHeadBytes.
constexpr std::size_t kHeadBytes = 64 << 10, kLongHeadBytes = 1 << 20;

int64_t Ns(const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

// Reads up to `bytes` from `offset` (fewer at the end of the file); false on a read error.
bool ReadAt(int fd, char* out, std::size_t bytes, std::size_t offset, std::size_t& done) {
  done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// The first `limit` bytes of a file (fewer when it is shorter), and its status.
bool ReadHead(const std::string& path, std::string& head, struct stat& info, std::size_t limit = kHeadBytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fstat(fd, &info) == 0;
  std::size_t done = 0;
  if (ok) {
    head.resize(std::min<std::size_t>(limit, static_cast<std::size_t>(info.st_size)));
    ok = ReadAt(fd, head.data(), head.size(), 0, done);
    head.resize(done);
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::string ReadFileBytes(const std::string& path) {
  std::string bytes;
  if (!ReadFileInto(path, bytes)) throw Error(ErrorCode::kNotFound, path + ": cannot be read");
  return bytes;
}

FolderStudySource::FolderStudySource(const std::string& folder, const FolderScanOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> paths;
  if (fs::is_regular_file(folder, ec)) {
    paths.push_back(folder);  // one file: a series of one image (or one multi-frame object)
  } else if (!fs::is_directory(folder, ec)) {
    throw Error(ErrorCode::kNotFound, folder + ": neither a folder nor a file");
  }
  if (paths.empty()) {
    for (const auto& entry : fs::recursive_directory_iterator(folder, ec)) {
      if (entry.is_regular_file()) paths.push_back(entry.path().string());
    }
  }
  std::sort(paths.begin(), paths.end());
  // Headers are read in parallel (each file once, up to SeriesInstanceUID), grouped in path order.
  struct Header {
    std::string uid, modality, manufacturer, problem;
    std::string fallback;  // the grouping key of an image without a SeriesInstanceUID
  };
  std::vector<Header> headers(paths.size());
  // Files under kSmallFile are read whole and their bytes kept (at most 64 MiB in all): series of
  // many small images are then read from disk once, not twice. Their bytes, not their parsed
  // datasets: those take two to three times the memory. The three attributes the grouping needs
  // are read straight from the bytes where the file is plain little-endian Part 10, so DCMTK
  // parses each small file once, when it is converted; otherwise, and for larger files, DCMTK
  // parses the header up to SeriesInstanceUID.
  constexpr std::uintmax_t kSmallFile = 64 << 10, kKeptBytes = 64ull << 20;
  std::vector<std::string> kept(paths.size());
  std::vector<std::uintmax_t> sizes(paths.size(), 0);
  std::uintmax_t budget = 0;
  std::vector<std::string> heads(paths.size());
  std::vector<std::optional<PixelLocation>> locations(paths.size());
  std::atomic<std::uintmax_t> head_budget{0};
  for (std::size_t i = 0; i < paths.size(); ++i) {
    std::error_code size_error;
    sizes[i] = std::filesystem::file_size(paths[i], size_error);
    if (size_error || sizes[i] >= kSmallFile || budget + sizes[i] > kKeptBytes) sizes[i] = 0;
    budget += sizes[i];
  }
  ParallelFor(paths.size(), [&](std::size_t i) {
    auto file = std::make_unique<DcmFileFormat>();
    OFCondition status = EC_Normal;
    std::string bytes;
    if (sizes[i] > 0) {
      // One read, then DCMTK parses from memory: a fifth faster than its buffered file reads.
      if (!ReadFileInto(paths[i], bytes)) {
        headers[i].problem = "cannot be read";
        return;
      }
      if (options.private_groups) {
        if (auto filtered = WithoutPrivateGroups(bytes, *options.private_groups, options.private_elements)) bytes = std::move(*filtered);
      }
      static constexpr uint32_t kGrouping[] = {0x00080060, 0x00080070, 0x0020000E};  // Modality, Manufacturer, UID
      if (auto values = TopLevelValues(bytes, kGrouping); values && !(*values)[0x0020000E].empty()) {
        headers[i] = {(*values)[0x0020000E], (*values)[0x00080060], (*values)[0x00080070], ""};
        kept[i] = std::move(bytes);
        return;
      }
      status = ParseDicomBuffer(bytes, *file, DcmTagKey(0x0020, 0x000F));
    } else {
      // A larger file: its first bytes, where a plain one holds every attribute before the pixels.
      // When the grouping values and the pixels' place are found there, the bytes before the
      // PixelData element are kept (a conversion then parses them, and reads the pixels alone).
      struct stat info {};
      thread_local std::string head;  // reused: the kept part is copied out of it
      if (ReadHead(paths[i], head, info)) {
        static constexpr uint32_t kGrouping[] = {0x00080060, 0x00080070, 0x0020000E};
        auto values = TopLevelValues(head, kGrouping);
        auto pixels = LocateNativePixelData(head);
        if (!pixels && head.size() < static_cast<std::size_t>(info.st_size)) {
          // Attributes past the first bytes (Siemens keeps its protocol there): read further, once.
          struct stat again {};
          if (ReadHead(paths[i], head, again, kLongHeadBytes) && again.st_size == info.st_size) {
            values = TopLevelValues(head, kGrouping);
            pixels = LocateNativePixelData(head);
          }
        }
        if (values && !(*values)[0x0020000E].empty() && pixels &&
            head_budget.fetch_add(pixels->element) + pixels->element <= kKeptBytes) {
          headers[i] = {(*values)[0x0020000E], (*values)[0x00080060], (*values)[0x00080070], ""};
          const std::string_view kept_part = std::string_view(head).substr(0, pixels->element);
          std::optional<std::string> filtered;
          if (options.private_groups) {
            filtered = WithoutPrivateGroups(kept_part, *options.private_groups, options.private_elements);
          }
          heads[i] = filtered ? std::move(*filtered) : std::string(kept_part);
          locations[i] = PixelLocation{.offset = pixels->offset, .length = pixels->length,
                                       .file_size = static_cast<std::uintmax_t>(info.st_size),
                                       .modified_ns = Ns(info.st_mtim), .changed_ns = Ns(info.st_ctim),
                                       .inode = static_cast<uint64_t>(info.st_ino)};
          return;
        }
      }
      status = file->loadFileUntilTag(paths[i].c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect,
                                      DcmTagKey(0x0020, 0x000F));
    }
    DcmDataset& ds = *file->getDataset();
    std::string uid = status.good() ? DicomString(ds, DCM_SeriesInstanceUID) : "";
    if (uid.empty() && status.good()) {
      // No SeriesInstanceUID (some exports and anonymizers empty it): an image is grouped as
      // dcm2niix groups it, with the images of the same series number and modality, and the
      // conversion says so. Anything else (DICOMDIR, reports) is skipped.
      DcmFileFormat whole;
      if (whole.loadFile(paths[i].c_str()).good() && whole.getDataset()->tagExists(DCM_PixelData)) {
        DcmDataset& full = *whole.getDataset();
        headers[i] = {"", DicomString(full, DCM_Modality), DicomString(full, DCM_Manufacturer), ""};
        headers[i].fallback = "series number " + DicomString(full, DCM_SeriesNumber) + ", " + headers[i].modality;
        if (sizes[i] > 0) kept[i] = std::move(bytes);
        return;
      }
    }
    if (uid.empty()) {
      headers[i].problem = status.bad() ? "not DICOM (" + std::string(status.text()) + ")" : "no SeriesInstanceUID";
      return;
    }
    headers[i] = {std::move(uid), DicomString(ds, DCM_Modality), DicomString(ds, DCM_Manufacturer), ""};
    if (sizes[i] > 0) kept[i] = std::move(bytes);
  });
  std::map<std::string, SeriesRef> by_uid;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const Header& header = headers[i];
    if (!header.problem.empty()) {
      skipped_.push_back(paths[i] + ": " + header.problem);
      continue;
    }
    const std::string key = header.uid.empty() ? "\x01" + header.fallback : header.uid;
    SeriesRef& series = by_uid[key];
    if (series.id.empty()) {
      series.id = HashForLog(key);
      if (header.uid.empty()) {
        series.grouping_warning = "SeriesInstanceUID missing: images grouped by " + header.fallback;
      }
      series.modality = header.modality;
      series.produced_by_procnode = header.manufacturer == kResultManufacturer;
    }
    series.instance_ids.push_back(paths[i]);
    if (sizes[i] > 0) kept_[paths[i]] = std::move(kept[i]);
    if (locations[i]) {
      heads_[paths[i]] = std::move(heads[i]);
      pixel_locations_[paths[i]] = *locations[i];
    }
  }
  for (auto& [uid, series] : by_uid) series_.push_back(std::move(series));
}

FolderStudySource::~FolderStudySource() = default;

std::optional<std::string> FolderStudySource::TakeKept(std::map<std::string, std::string>& kept,
                                                        const std::string& instance_id) {
  std::lock_guard lock(kept_mutex_);
  const auto it = kept.find(instance_id);
  if (it == kept.end()) return std::nullopt;
  std::string bytes = std::move(it->second);
  kept.erase(it);
  return bytes;
}

std::unique_ptr<DcmFileFormat> FolderStudySource::TakeParsed(const std::string& instance_id) {
  const auto bytes = TakeKept(kept_, instance_id);
  return bytes ? ReadDicomBuffer(*bytes, "instance " + instance_id) : nullptr;
}

std::optional<FolderStudySource::PixelLocation> FolderStudySource::PixelLocationOf(const std::string& instance_id) const {
  const auto it = pixel_locations_.find(instance_id);
  if (it == pixel_locations_.end()) return std::nullopt;
  return it->second;
}

std::unique_ptr<DcmFileFormat> FolderStudySource::TakeHead(const std::string& instance_id) {
  const auto bytes = TakeKept(heads_, instance_id);
  if (!bytes) return nullptr;
  auto file = ReadDicomBuffer(*bytes, "instance " + instance_id);
  // An empty placeholder: the header checks see an image; the pixels are read with ReadPixels.
  const OFCondition placed = file->getDataset()->putAndInsertUint16Array(DCM_PixelData, nullptr, 0);
  if (placed.bad()) throw Error(ErrorCode::kInternal, "instance " + instance_id + ": " + placed.text());
  return file;
}

void FolderStudySource::ReadPixels(const std::string& path, const PixelLocation& at, char* out, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kNotFound, path + ": cannot be read");
  struct stat info {};
  std::size_t done = 0;
  const bool same = ::fstat(fd, &info) == 0 && static_cast<std::uintmax_t>(info.st_size) == at.file_size &&
                    Ns(info.st_mtim) == at.modified_ns && Ns(info.st_ctim) == at.changed_ns &&
                    static_cast<uint64_t>(info.st_ino) == at.inode;
  const bool read = same && bytes <= at.length && ReadAt(fd, out, bytes, at.offset, done);
  ::close(fd);
  if (!same) throw Error(ErrorCode::kInvalidInput, path + ": the file changed while the series was being converted");
  if (!read || done < bytes) {
    throw Error(ErrorCode::kInvalidInput, path + ": PixelData ends after " + std::to_string(done) + " of " +
                                              std::to_string(bytes) + " bytes");
  }
}

std::vector<SeriesRef> FolderStudySource::ListSeries(const std::string&) { return series_; }

std::string FolderStudySource::FetchInstance(const std::string& instance_id) {
  return ReadFileBytes(instance_id);
}

}  // namespace procnode
