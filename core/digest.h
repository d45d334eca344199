// Digests and identifiers derived from them.
//
// Sha256Hex: lowercase hex SHA-256 of bytes (idempotency keys, log-safe UID hashes).
// DerivedUid: a DICOM UID under the 2.25 root (PS3.5 B.2) whose integer part is the first 128
// bits of SHA-256(namespace || 0x00 || name). The same (namespace, name) always gives the same
// UID, which is what makes a re-run job store the same instance instead of a second copy.
// HashForLog: a short, non-reversible tag for a UID or other identifier in logs.
// All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace procnode {

std::string Sha256Hex(std::string_view bytes);
std::string DerivedUid(std::string_view name_space, std::string_view name);
std::string HashForLog(std::string_view identifier);
// "2.25." + the decimal value of the first 16 bytes of `digest` (big-endian). Needs >= 16 bytes.
std::string Uid225FromDigest(std::string_view digest);

}  // namespace procnode
