#include "core/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace procnode {

std::string ErrnoReason(int error) {
  return error == 0 ? std::string("unknown reason") : std::string(std::strerror(error));
}

void RemovePartialFile(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) ::unlink(path.c_str());
}

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw Error(ErrorCode::kUnavailable, path + ": cannot be created (" + ErrnoReason(errno) + ")");
  errno = 0;
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  int error = errno;
  // fclose flushes the last buffer: a full disk often shows only here.
  const bool closed = std::fclose(file) == 0;
  if (written && closed) return;
  if (error == 0) error = errno;
  RemovePartialFile(path);
  throw Error(ErrorCode::kUnavailable, path + ": cannot be written (" + ErrnoReason(error) + ")");
}

}  // namespace procnode
