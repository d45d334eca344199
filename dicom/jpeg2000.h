// JPEG 2000 (and High-Throughput JPEG 2000) frame decoding through OpenJPEG (Debian's
// libopenjp2), for the transfer syntaxes DCMTK cannot decode: 1.2.840.10008.1.2.4.90/.91 and
// 1.2.840.10008.1.2.4.201/.202/.203.
//
// Returns the first component's samples as signed 32-bit integers, row by row. Errors are
// Error(kInvalidInput) naming `name` with OpenJPEG's message; colour (more than one component)
// is Error(kUnsupported). Thread-safe (each call owns its codec).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace procnode {

struct Jpeg2000Frame {
  uint32_t width = 0, height = 0, components = 0;
  uint32_t precision = 0;
  bool is_signed = false;
  std::vector<int32_t> samples;
};

bool IsJpeg2000TransferSyntax(const std::string& uid);
Jpeg2000Frame DecodeJpeg2000(const uint8_t* data, std::size_t size, const std::string& name);

}  // namespace procnode
