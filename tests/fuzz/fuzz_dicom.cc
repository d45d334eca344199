// libFuzzer target: a DICOM Part 10 file as procnode reads outside input. The byte walker
// (WithoutPrivateGroups, TopLevelValues), DCMTK's parse, the image header and pixel decoding, the
// private headers conversion reads (Siemens CSA, GE protocol block), RTSTRUCT contours with
// their rasterisation, and SEG segments placed on a grid. Errors are expected;
// crashes, leaks, undefined behaviour and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "dicom/dictionary.h"
#include "dicom/ge_protocol.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "dicom/prefilter.h"
#include "dicom/siemens_csa.h"
#include "processors/radiomics/rtstruct.h"
#include "processors/radiomics/segmentation.h"

#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/oflog/oflog.h>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  procnode::UseCompiledDataDictionary();
  procnode::RegisterDecoders();
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace procnode;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  static const uint16_t kKeep[] = {0x0019, 0x0025, 0x0029};
  const auto filtered = WithoutPrivateGroups(bytes, kKeep);
  static const uint32_t kTags[] = {0x00080060, 0x0020000E, 0x00200013};
  (void)TopLevelValues(bytes, kTags);
  try {
    auto file = ReadDicomBuffer(filtered ? std::string_view(*filtered) : bytes, "fuzz");
    DcmDataset& ds = *file->getDataset();
    for (const auto group : {0x1010, 0x1020}) {
      if (auto csa = DicomBytes(ds, 0x0029, static_cast<uint16_t>(group))) {
        try {
          (void)ParseSiemensCsa(std::string_view(reinterpret_cast<const char*>(csa->data()), csa->size()), "fuzz");
        } catch (const Error&) {
        }
      }
    }
    if (auto block = DicomBytes(ds, 0x0025, 0x101B)) {
      (void)ParseGeProtocol(std::string_view(reinterpret_cast<const char*>(block->data()), block->size()));
    }
    DicomImage image = DecodeDicomImageHeader(ds, "fuzz");
    // Bounded (4 MiB of samples): the fuzzer's inputs are small, and pixel buffers follow the
    // header's claims, which would otherwise spend the run allocating.
    if (static_cast<uint64_t>(image.rows) * image.columns * image.frames * 8 <= (4u << 20)) DecodeDicomPixels(ds, image);
  } catch (const Error&) {
  }
  // An RT Structure Set's contours, and their rasterisation onto a small grid.
  try {
    Volume grid;
    grid.dims = {16, 16, 8};
    grid.spacing = {2, 2, 3};
    for (const auto& roi : radiomics::ReadStructureSet(std::string(bytes), "fuzz")) (void)radiomics::RasteriseRoi(roi, grid);
  } catch (const Error&) {
  }
  // A Segmentation's segments placed onto a small grid.
  try {
    Volume grid;
    grid.dims = {16, 16, 8};
    grid.spacing = {2, 2, 3};
    (void)radiomics::ReadSegmentation(std::string(bytes), "fuzz", grid);
  } catch (const Error&) {
  }
  return 0;
}
