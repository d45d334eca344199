#include "core/files.h"

#include <fstream>

#include "core/error.h"

namespace procnode {

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw Error(ErrorCode::kUnavailable, path + ": cannot be written");
}

}  // namespace procnode
