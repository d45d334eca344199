// libFuzzer target: a Siemens CSA header (SV10) as found in (0029,1010) / (0029,1020).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "dicom/siemens_csa.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto csa = procnode::ParseSiemensCsa(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const char* element : {"NumberOfImagesInMosaic", "SliceNormalVector", "MosaicRefAcqTimes", "B_value"}) {
      (void)procnode::CsaNumbers(csa, element);
    }
  } catch (const procnode::Error&) {
  }
  return 0;
}
