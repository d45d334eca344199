// One DICOM image instance, decoded through DCMTK: the attributes that geometry and conversion
// need, and the stored pixel values (before Rescale Slope/Intercept).
//
// Samples keep their stored width (1, 2 or 4 bytes, BitsAllocated), masked to BitsStored and
// sign-extended when PixelRepresentation is 1, in host byte order: `samples` holds
// frames x rows x columns of them, frame after frame, row after row. Compressed transfer syntaxes
// are decoded with DCMTK's registered decoders (JPEG family, JPEG-LS, RLE).
// Errors name the object (`name`) and the reason: Error(kInvalidInput) for malformed data,
// Error(kUnsupported) for colour, packed bits or a transfer syntax DCMTK cannot decode.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

class DcmDataset;
class DcmItem;
class DcmTagKey;

namespace procnode {

enum class SampleType { kUint8, kInt8, kUint16, kInt16, kUint32, kInt32 };

// Memory for large sample buffers straight from the kernel (mmap), given back the moment it is
// freed. Through malloc, an image freed on one thread stays in that thread's arena: a series
// assembled slice by slice (each freed once copied) could then peak at two volumes, not one, in a
// process of many threads such as Orthanc. Small buffers use malloc.
void* AllocateSamples(std::size_t bytes);
void FreeSamples(void* p, std::size_t bytes) noexcept;

// While one lives on a thread, the large sample buffers that thread frees are kept (4 MiB at most)
// for its next ones of the same size, and unmapped when the last one on the thread ends: a thread
// placing slice after slice reuses pages already faulted in. Elsewhere buffers are unmapped at once.
class ReuseSampleBuffers {
 public:
  ReuseSampleBuffers();
  ~ReuseSampleBuffers();
  ReuseSampleBuffers(const ReuseSampleBuffers&) = delete;
  ReuseSampleBuffers& operator=(const ReuseSampleBuffers&) = delete;
};

// An allocator that leaves new elements uninitialised: sample buffers are always written in full
// right after they are sized, so zero-filling them first would only cost time.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  using value_type = T;
  T* allocate(std::size_t n) { return static_cast<T*>(AllocateSamples(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { FreeSamples(p, n * sizeof(T)); }
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using SampleBuffer = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;

struct DicomImage {
  std::string name;
  long rows = 0, columns = 0, frames = 1;
  int bits_allocated = 16, bits_stored = 16, high_bit = 15;
  bool is_signed = false;
  SampleType sample_type = SampleType::kUint16;
  std::optional<std::array<double, 3>> position;     // ImagePositionPatient
  std::optional<std::array<double, 6>> orientation;  // ImageOrientationPatient
  std::array<double, 2> pixel_spacing{1, 1};          // row spacing, column spacing (PS3.3 10.7.1.3)
  bool has_pixel_spacing = false;
  double slice_thickness = 0;
  double slope = 1, intercept = 0;
  long instance_number = 0;
  std::string modality, series_uid, sop_class_uid, sop_instance_uid;
  SampleBuffer samples;
  int64_t max_sample = 0;  // at least the largest stored value (exact for 16-bit unsigned data)

  std::size_t SampleCount() const { return static_cast<std::size_t>(rows) * columns * frames; }
  // The stored value of sample `i` (no rescale).
  int64_t Sample(std::size_t i) const;
};

// Decodes `ds`, which may be changed (decompressed in place).
DicomImage DecodeDicomImage(DcmDataset& ds, const std::string& name);

// The same in two steps: the attributes only (checked as DecodeDicomImage checks them; `samples`
// empty, the pixel data not read), then the samples into that image. A series can so be sorted
// and checked before any pixel data is held.
DicomImage DecodeDicomImageHeader(DcmDataset& ds, const std::string& name);
void DecodeDicomPixels(DcmDataset& ds, DicomImage& image);
// The samples of a native (uncompressed little-endian) image whose PixelData value of `available`
// bytes `read` copies into the buffer it is given, normalised as DecodeDicomPixels normalises them:
// a reader that knows where the value lies in the file reads it straight into place.
void ReadNativePixels(DicomImage& image, std::size_t available, const std::function<void(char*, std::size_t)>& read);

// Position, orientation, pixel spacing and slice thickness from the items holding them: the
// dataset itself for classic images; a frame's Plane Position, Plane Orientation and Pixel Measures
// items for enhanced ones (PS3.3 C.7.6.16). Null items and absent values leave `image` as it was.
void ReadPlaneGeometry(DcmItem* position, DcmItem* orientation, DcmItem* measures, DicomImage& image);

// Attribute readers (a dataset, or an item of a sequence such as a functional group): empty /
// nullopt when absent or unreadable. Numbers are read through their text, so DS, IS and the
// binary VRs read alike; values of unknown VR (private, Implicit VR) are not numbers.
// DCMTK's key for a tag number (group << 16 | element), as DicomKeywordToTag gives it.
DcmTagKey TagKey(uint32_t tag);

std::string DicomString(DcmItem& item, const DcmTagKey& tag);
std::optional<double> DicomNumber(DcmItem& item, const DcmTagKey& tag, unsigned long index = 0);
std::string DicomString(DcmDataset& ds, uint16_t group, uint16_t element);
std::optional<double> DicomNumber(DcmDataset& ds, uint16_t group, uint16_t element, unsigned long index = 0);
// The numbers of an attribute, whatever VR it arrived with: read as DicomNumber reads them where
// DCMTK knows the VR; from the raw bytes of an unknown one (a private attribute in Implicit VR) as
// `raw` says, text ("1000\0\0") or little-endian binary floats of 4 or 8 bytes. `deep`: the first
// occurrence anywhere, sequences included (an enhanced object's first frame or shared groups).
// Empty unless all `count` values are there and finite.
enum class Raw { kText, kFloat32, kFloat64 };
std::vector<double> AttributeNumbers(DcmItem& item, const DcmTagKey& tag, std::size_t count, Raw raw, bool deep = false);
// The raw value bytes of an element of unknown VR (a private tag read from Implicit VR).
std::optional<std::vector<uint8_t>> DicomBytes(DcmDataset& ds, uint16_t group, uint16_t element);

}  // namespace procnode
