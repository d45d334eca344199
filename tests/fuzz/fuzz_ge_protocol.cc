// libFuzzer target: GE's protocol data block (0025,101B): length, gzip, key/value text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dicom/ge_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)procnode::ParseGeProtocol(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
