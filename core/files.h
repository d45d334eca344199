// Writing a whole file from bytes, with procnode's error on failure. Thread-safe.
#pragma once

#include <string>

namespace procnode {

// Writes `bytes` to `path` (replacing it). When it cannot (no such folder, no permission, the disk
// full), the partial file is removed and Error(kUnavailable, "PATH: cannot be written (No space
// left on device)") names the path and the system's reason.
void WriteFileBytes(const std::string& path, const std::string& bytes);

// Removes what a failed write left at `path` when it is a regular file (never a device such as
// /dev/full, a link or a folder), so that no truncated file looks whole.
void RemovePartialFile(const std::string& path);

// The system's words for an errno value ("No space left on device"), for error messages.
std::string ErrnoReason(int error);

}  // namespace procnode
