// libFuzzer target: a NIfTI-1 file (.nii or .nii.gz) as an external tool or a user hands it over:
// the reader, then the float volume made from it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "nifti/nifti1.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto image = procnode::ParseNiftiBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz", 64u << 20);
    (void)procnode::VolumeFromNifti(image);
  } catch (const procnode::Error&) {
  }
  return 0;
}
