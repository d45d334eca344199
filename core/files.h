// Writing a whole file from bytes, with procnode's error on failure. Thread-safe.
#pragma once

#include <string>

namespace procnode {

// Writes `bytes` to `path` (replacing it); Error(kUnavailable) naming the path when it cannot.
void WriteFileBytes(const std::string& path, const std::string& bytes);

}  // namespace procnode
