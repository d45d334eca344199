#include "dicom/image.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfcache.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "dicom/element_index.h"
#include "dicom/io.h"
#include "dicom/jpeg2000.h"

namespace procnode {
namespace {

std::optional<long> GetInt(DcmDataset& ds, const DcmTagKey& tag) {
  DcmElement* found = FindElement(ds, tag);
  if (found == nullptr) return std::nullopt;
  Uint16 u16 = 0;
  if (found->getUint16(u16).good()) return u16;
  Sint32 s32 = 0;
  if (found->getSint32(s32).good()) return s32;  // IS values
  return std::nullopt;
}

std::optional<double> GetDouble(DcmDataset& ds, const DcmTagKey& tag, unsigned long index = 0) {
  DcmElement* found = FindElement(ds, tag);
  Float64 value = 0;
  if (found != nullptr && found->getFloat64(value, index).good() && std::isfinite(value)) return value;
  return std::nullopt;
}

[[noreturn]] void Invalid(const std::string& name, const std::string& reason) {
  throw Error(ErrorCode::kInvalidInput, name + ": " + reason);
}

// Copies `count` stored words to `target` (which may be `words` itself), keeping BitsStored bits
// below HighBit and sign-extending them when signed; returns the largest value. Written as plain
// same-width loops so they vectorise.
template <typename Stored>
[[gnu::noinline]] int64_t NormalizeInto(const Stored* words, Stored* target, std::size_t count, unsigned shift,
                                        int bits_stored, bool is_signed) {
  using Signed = std::make_signed_t<Stored>;
  constexpr int kBits = 8 * sizeof(Stored);
  if (!is_signed) {
    if (bits_stored < kBits) {  // masked: the mask bounds every value, no scan needed
      const auto mask = static_cast<Stored>((Stored{1} << bits_stored) - 1);
      if (shift == 0) {  // the usual layout: one vectorisable AND
        for (std::size_t i = 0; i < count; ++i) target[i] = static_cast<Stored>(words[i] & mask);
      } else {
        for (std::size_t i = 0; i < count; ++i) target[i] = static_cast<Stored>((words[i] >> shift) & mask);
      }
      return mask;
    }
    if (target != words) std::memcpy(target, words, count * sizeof(Stored));
    // The exact maximum, through the signed type (SSE2 has signed 16-bit max, not unsigned).
    constexpr auto kFlip = static_cast<Stored>(Stored{1} << (kBits - 1));
    Signed highest = std::numeric_limits<Signed>::min();
    for (std::size_t i = 0; i < count; ++i) {
      const auto flipped = static_cast<Signed>(target[i] ^ kFlip);
      highest = flipped > highest ? flipped : highest;
    }
    return static_cast<Stored>(static_cast<Stored>(highest) ^ kFlip);
  }
  auto* signed_target = reinterpret_cast<Signed*>(target);
  const int up = kBits - bits_stored - static_cast<int>(shift);  // move the sign bit to the top
  const int down = kBits - bits_stored;
  Signed highest = std::numeric_limits<Signed>::min();
  for (std::size_t i = 0; i < count; ++i) {
    const Signed value = static_cast<Signed>(static_cast<Signed>(static_cast<Stored>(words[i] << up)) >> down);
    signed_target[i] = value;
    highest = value > highest ? value : highest;
  }
  return highest;
}

// Error(kInvalidInput): the PixelData value holds fewer bytes than the image's attributes need.
[[noreturn]] void PixelLengthError(const DicomImage& out, std::size_t have_bytes) {
  std::ostringstream msg;
  msg << "PixelData holds " << have_bytes << " bytes, expected " << out.SampleCount() * (out.bits_allocated / 8) << " ("
      << out.columns << "x" << out.rows << "x" << out.frames << " at " << out.bits_allocated << " bits)";
  Invalid(out.name, msg.str());
}

// NormalizeInto a fresh buffer.
template <typename Stored>
int64_t Normalize(const Stored* words, std::size_t count, unsigned shift, int bits_stored, bool is_signed, SampleBuffer& out) {
  out.resize(count * sizeof(Stored));
  return NormalizeInto(words, reinterpret_cast<Stored*>(out.data()), count, shift, bits_stored, is_signed);
}

// Decodes every frame of a JPEG 2000 (or HTJ2K) encapsulated PixelData with OpenJPEG. Frames are
// one fragment each, or, for a single frame, all fragments together; otherwise a fragment that
// starts with the SOC marker (FF 4F) begins a new frame.
void DecodeJpeg2000Frames(DcmDataset& ds, E_TransferSyntax xfer, DicomImage& out) {
  const std::string& name = out.name;
  DcmElement* element = nullptr;
  auto* pixel_data = ds.findAndGetElement(DCM_PixelData, element).good() ? dynamic_cast<DcmPixelData*>(element) : nullptr;
  DcmPixelSequence* sequence = nullptr;
  if (pixel_data == nullptr || pixel_data->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr) {
    Invalid(name, "JPEG 2000 PixelData is not encapsulated");
  }
  std::vector<std::vector<uint8_t>> frames;
  const unsigned long items = sequence->card();
  for (unsigned long i = 1; i < items; ++i) {  // item 0 is the Basic Offset Table
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (sequence->getItem(item, i).bad() || item == nullptr || item->getUint8Array(bytes).bad()) continue;
    const Uint32 length = item->getLength();
    const bool starts_frame = length >= 2 && bytes != nullptr && bytes[0] == 0xFF && bytes[1] == 0x4F;
    const bool one_each = static_cast<long>(items - 1) == out.frames;
    if (frames.empty() || (out.frames > 1 && (one_each || starts_frame))) frames.emplace_back();
    if (bytes != nullptr) frames.back().insert(frames.back().end(), bytes, bytes + length);
  }
  if (static_cast<long>(frames.size()) < out.frames) {
    Invalid(name, "JPEG 2000 PixelData holds " + std::to_string(frames.size()) + " frames, expected " +
                      std::to_string(out.frames));
  }
  const std::size_t per_frame = static_cast<std::size_t>(out.rows) * out.columns;
  std::vector<int32_t> values;
  values.reserve(per_frame * out.frames);
  for (long f = 0; f < out.frames; ++f) {
    const auto frame = DecodeJpeg2000(frames[f].data(), frames[f].size(), name + " frame " + std::to_string(f + 1));
    if (frame.width != static_cast<uint32_t>(out.columns) || frame.height != static_cast<uint32_t>(out.rows)) {
      Invalid(name, "JPEG 2000 frame is " + std::to_string(frame.width) + "x" + std::to_string(frame.height) +
                        ", the header says " + std::to_string(out.columns) + "x" + std::to_string(out.rows));
    }
    // The codestream knows whether its samples are signed; a header that disagrees
    // (PixelRepresentation) is overruled, as pydicom and GDCM do.
    out.is_signed = frame.is_signed;
    values.insert(values.end(), frame.samples.begin(), frame.samples.end());
  }
  auto store = [&](auto tag, SampleType type) {  // values are exact here: track the real maximum
    using T = decltype(tag);
    out.samples.resize(values.size() * sizeof(T));
    auto* target = reinterpret_cast<T*>(out.samples.data());
    int64_t highest = std::numeric_limits<int64_t>::min();
    for (std::size_t i = 0; i < values.size(); ++i) {
      target[i] = static_cast<T>(values[i]);
      highest = std::max<int64_t>(highest, values[i]);
    }
    out.max_sample = highest;
    out.sample_type = type;
  };
  if (out.bits_allocated == 8) {
    out.is_signed ? store(int8_t{}, SampleType::kInt8) : store(uint8_t{}, SampleType::kUint8);
  } else if (out.bits_allocated == 16) {
    out.is_signed ? store(int16_t{}, SampleType::kInt16) : store(uint16_t{}, SampleType::kUint16);
  } else {
    out.is_signed ? store(int32_t{}, SampleType::kInt32) : store(uint32_t{}, SampleType::kUint32);
  }
}

}  // namespace

DcmTagKey TagKey(uint32_t tag) { return DcmTagKey(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF)); }

std::string DicomString(DcmItem& item, const DcmTagKey& tag) {
  DcmElement* found = FindElement(item, tag);
  OFString value;
  return found != nullptr && found->getOFStringArray(value).good() ? std::string(value.c_str()) : std::string();
}

namespace {

bool UnknownVr(const DcmElement& element) {
  const DcmEVR vr = element.ident();
  return vr == EVR_OB || vr == EVR_UN || vr == EVR_OW || vr == EVR_UNKNOWN || vr == EVR_UNKNOWN2B;
}

// Value `index` of an element of known VR, read through its text (DS, IS and the binary VRs alike).
std::optional<double> ElementNumber(DcmElement& element, unsigned long index) {
  OFString text;
  if (element.getOFString(text, index).bad() || text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  while (end != nullptr && *end == ' ') ++end;
  if (end == text.c_str() || (end != nullptr && *end != '\0') || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<double> DicomNumber(DcmItem& item, const DcmTagKey& tag, unsigned long index) {
  DcmElement* found = FindElement(item, tag);
  if (found == nullptr || UnknownVr(*found)) return std::nullopt;
  return ElementNumber(*found, index);
}

std::vector<double> AttributeNumbers(DcmItem& item, const DcmTagKey& tag, std::size_t count, Raw raw, bool deep) {
  std::vector<double> values;
  DcmElement* found = nullptr;
  if (!deep) {
    found = FindElement(item, tag);
  } else if (item.findAndGetElement(tag, found, OFTrue).bad()) {
    found = nullptr;
  }
  if (found == nullptr) return values;
  if (!UnknownVr(*found)) {
    for (unsigned long i = 0; i < count; ++i) {
      const auto value = ElementNumber(*found, i);
      if (!value) return {};
      values.push_back(*value);
    }
    return values;
  }
  Uint8* bytes = nullptr;
  if (found->getUint8Array(bytes).bad() || bytes == nullptr) return values;
  const std::size_t length = found->getLength();
  if (raw == Raw::kText) {
    for (const auto& part : Split(std::string(reinterpret_cast<const char*>(bytes), length), '\\')) {
      char* end = nullptr;
      const double value = std::strtod(part.c_str(), &end);
      if (end == part.c_str() || !std::isfinite(value)) break;
      values.push_back(value);
      if (values.size() == count) break;
    }
  } else {
    const std::size_t width = raw == Raw::kFloat32 ? 4 : 8;
    for (std::size_t i = 0; i < count && (i + 1) * width <= length; ++i) {
      if (width == 4) {
        float f;
        std::memcpy(&f, bytes + i * width, 4);
        values.push_back(f);
      } else {
        double d;
        std::memcpy(&d, bytes + i * width, 8);
        values.push_back(d);
      }
    }
  }
  if (values.size() != count || !std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); })) {
    values.clear();
  }
  return values;
}

void ReadPlaneGeometry(DcmItem* position, DcmItem* orientation, DcmItem* measures, DicomImage& image) {
  if (position != nullptr) {
    auto x = DicomNumber(*position, DCM_ImagePositionPatient, 0), y = DicomNumber(*position, DCM_ImagePositionPatient, 1),
         z = DicomNumber(*position, DCM_ImagePositionPatient, 2);
    if (x && y && z) image.position = std::array<double, 3>{*x, *y, *z};
  }
  if (orientation != nullptr) {
    std::array<double, 6> iop{};
    bool complete = true;
    for (unsigned long i = 0; i < 6 && complete; ++i) {
      auto v = DicomNumber(*orientation, DCM_ImageOrientationPatient, i);
      complete = v.has_value();
      if (v) iop[i] = *v;
    }
    if (complete) image.orientation = iop;
  }
  if (measures != nullptr) {
    auto row = DicomNumber(*measures, DCM_PixelSpacing, 0), column = DicomNumber(*measures, DCM_PixelSpacing, 1);
    if (row && column && *row > 0 && *column > 0) {
      image.pixel_spacing = {*row, *column};
      image.has_pixel_spacing = true;
    }
    if (auto thickness = DicomNumber(*measures, DCM_SliceThickness)) image.slice_thickness = *thickness;
  }
}

std::string DicomString(DcmDataset& ds, uint16_t group, uint16_t element) {
  return DicomString(ds, DcmTagKey(group, element));
}

std::optional<double> DicomNumber(DcmDataset& ds, uint16_t group, uint16_t element, unsigned long index) {
  return DicomNumber(ds, DcmTagKey(group, element), index);
}

std::optional<std::vector<uint8_t>> DicomBytes(DcmDataset& ds, uint16_t group, uint16_t element) {
  DcmElement* found = FindElement(ds, DcmTagKey(group, element));
  if (found == nullptr) return std::nullopt;
  Uint8* bytes = nullptr;
  if (found->getUint8Array(bytes).bad() || bytes == nullptr) return std::nullopt;
  return std::vector<uint8_t>(bytes, bytes + found->getLength());
}

namespace {
constexpr std::size_t kMappedSamples = 64 << 10;  // at and above: mmap (a 256x256 16-bit image is 128 KiB)
constexpr std::size_t kSpareLimit = 4 << 20;      // freed buffers kept for reuse, per thread (PlaceSlices runs hold 2 MiB)

// Freed mappings kept by this thread while a ReuseSampleBuffers lives on it (up to kSpareLimit
// bytes), for the next buffers of the same size: a thread placing slice after slice then reuses
// pages already faulted in, which under some hypervisors costs more than the copy itself.
struct SpareMappings {
  std::vector<std::pair<void*, std::size_t>> kept;
  std::size_t bytes = 0;
  int scopes = 0;  // live ReuseSampleBuffers on this thread
  void Release() noexcept {
    for (const auto& [p, size] : kept) ::munmap(p, size);
    kept.clear();
    bytes = 0;
  }
  ~SpareMappings() { Release(); }
};
thread_local SpareMappings spare = [] {
  SpareMappings made;
  made.kept.reserve(64);  // FreeSamples is noexcept: it never allocates
  return made;
}();

}  // namespace

void* AllocateSamples(std::size_t bytes) {
  if (bytes < kMappedSamples) {
    if (void* p = std::malloc(bytes > 0 ? bytes : 1)) return p;
    throw std::bad_alloc();
  }
  for (auto it = spare.kept.rbegin(); it != spare.kept.rend(); ++it) {
    if (it->second != bytes) continue;
    void* p = it->first;
    spare.kept.erase(std::next(it).base());
    spare.bytes -= bytes;
    return p;
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void FreeSamples(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kMappedSamples) {
    std::free(p);
    return;
  }
  if (spare.scopes > 0 && spare.bytes + bytes <= kSpareLimit && spare.kept.size() < spare.kept.capacity()) {
    spare.kept.emplace_back(p, bytes);
    spare.bytes += bytes;
    return;
  }
  ::munmap(p, bytes);
}

ReuseSampleBuffers::ReuseSampleBuffers() { ++spare.scopes; }

ReuseSampleBuffers::~ReuseSampleBuffers() {
  if (--spare.scopes == 0) spare.Release();
}

int64_t DicomImage::Sample(std::size_t i) const {
  switch (sample_type) {
    case SampleType::kUint8: return samples[i];
    case SampleType::kInt8: return static_cast<int8_t>(samples[i]);
    case SampleType::kUint16: return reinterpret_cast<const uint16_t*>(samples.data())[i];
    case SampleType::kInt16: return reinterpret_cast<const int16_t*>(samples.data())[i];
    case SampleType::kUint32: return reinterpret_cast<const uint32_t*>(samples.data())[i];
    case SampleType::kInt32: return reinterpret_cast<const int32_t*>(samples.data())[i];
  }
  return 0;
}

DicomImage DecodeDicomImageHeader(DcmDataset& ds, const std::string& name) {
  DicomImage out;
  out.name = name;
  out.modality = DicomString(ds, DCM_Modality);
  out.series_uid = DicomString(ds, DCM_SeriesInstanceUID);
  out.sop_class_uid = DicomString(ds, DCM_SOPClassUID);
  out.sop_instance_uid = DicomString(ds, DCM_SOPInstanceUID);
  out.instance_number = GetInt(ds, DCM_InstanceNumber).value_or(0);
  out.slice_thickness = GetDouble(ds, DCM_SliceThickness).value_or(0);

  if (FindElement(ds, DCM_PixelData) == nullptr) Invalid(name, "no PixelData (7FE0,0010): not an image");
  const auto rows = GetInt(ds, DCM_Rows), columns = GetInt(ds, DCM_Columns);
  const auto bits_allocated = GetInt(ds, DCM_BitsAllocated);
  if (!rows || !columns || *rows <= 0 || *columns <= 0) Invalid(name, "Rows or Columns missing or zero");
  if (!bits_allocated) Invalid(name, "BitsAllocated missing");
  const long samples_per_pixel = GetInt(ds, DCM_SamplesPerPixel).value_or(1);
  if (samples_per_pixel != 1) {
    throw Error(ErrorCode::kUnsupported,
                name + ": SamplesPerPixel " + std::to_string(samples_per_pixel) + " (colour) is not a volume");
  }
  const long bits_stored = GetInt(ds, DCM_BitsStored).value_or(*bits_allocated);
  const long high_bit = GetInt(ds, DCM_HighBit).value_or(bits_stored - 1);
  out.is_signed = GetInt(ds, DCM_PixelRepresentation).value_or(0) == 1;
  if (*bits_allocated != 8 && *bits_allocated != 16 && *bits_allocated != 32) {
    throw Error(ErrorCode::kUnsupported, name + ": BitsAllocated " + std::to_string(*bits_allocated) + " is not supported");
  }
  if (bits_stored <= 0 || bits_stored > *bits_allocated || high_bit < bits_stored - 1 || high_bit >= *bits_allocated) {
    Invalid(name, "BitsStored " + std::to_string(bits_stored) + " / HighBit " + std::to_string(high_bit) +
                      " do not fit BitsAllocated " + std::to_string(*bits_allocated));
  }
  out.bits_allocated = static_cast<int>(*bits_allocated);
  out.bits_stored = static_cast<int>(bits_stored);
  out.rows = *rows;
  out.columns = *columns;
  {
    OFString frames_text;
    DcmElement* frames = FindElement(ds, DCM_NumberOfFrames);
    if (frames != nullptr && frames->getOFString(frames_text, 0).good()) {
      out.frames = std::atol(frames_text.c_str());
      if (out.frames <= 0) Invalid(name, "NumberOfFrames '" + std::string(frames_text.c_str()) + "'");
    }
  }
  out.slope = GetDouble(ds, DCM_RescaleSlope).value_or(1.0);
  out.intercept = GetDouble(ds, DCM_RescaleIntercept).value_or(0.0);
  out.high_bit = static_cast<int>(high_bit);
  const int width = out.bits_allocated / 8;
  out.sample_type = width == 1   ? (out.is_signed ? SampleType::kInt8 : SampleType::kUint8)
                    : width == 2 ? (out.is_signed ? SampleType::kInt16 : SampleType::kUint16)
                                 : (out.is_signed ? SampleType::kInt32 : SampleType::kUint32);
  ReadPlaneGeometry(&ds, &ds, &ds, out);
  return out;
}

void DecodeDicomPixels(DcmDataset& ds, DicomImage& out) {
  const std::string& name = out.name;
  const long high_bit = out.high_bit, bits_stored = out.bits_stored;
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (IsJpeg2000TransferSyntax(DcmXfer(xfer).getXferID())) {
    DecodeJpeg2000Frames(ds, xfer, out);
    return;
  }
  if (DcmXfer(xfer).isEncapsulated()) {
    RegisterDecoders();
    const OFCondition status = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
      throw Error(ErrorCode::kUnsupported,
                  name + ": transfer syntax " + std::string(DcmXfer(xfer).getXferName()) + " cannot be decoded" +
                      (status.bad() ? " (" + std::string(status.text()) + ")" : ""));
    }
  }

  const std::size_t expected = out.SampleCount();
  auto length_error = [&](unsigned long have_bytes) { PixelLengthError(out, have_bytes); };
  const unsigned shift = static_cast<unsigned>(high_bit + 1 - bits_stored);
  DcmElement* element = FindElement(ds, DCM_PixelData);
  const bool in_file = element != nullptr &&
                       !element->valueLoaded() && !DcmXfer(xfer).isEncapsulated() && DcmXfer(xfer).isLittleEndian();
  if (in_file && out.bits_allocated == 16) {
    // Not read yet (large values stay in the file): read it straight into the samples and
    // normalise there, instead of through a copy held by DCMTK.
    DcmFileCache cache;
    ReadNativePixels(out, element->getLength(), [&](char* target, std::size_t bytes) {
      if (element->getPartialValue(target, 0, static_cast<Uint32>(bytes), &cache).bad()) Invalid(name, "PixelData unreadable");
    });
  } else if (out.bits_allocated == 16) {
    const Uint16* words = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint16Array(DCM_PixelData, words, &count).bad() || words == nullptr) Invalid(name, "PixelData unreadable");
    if (count < expected) length_error(count * 2);
    out.max_sample = Normalize(words, expected, shift, out.bits_stored, out.is_signed, out.samples);
  } else {
    const Uint8* bytes = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint8Array(DCM_PixelData, bytes, &count).bad() || bytes == nullptr) Invalid(name, "PixelData unreadable");
    const std::size_t width = static_cast<std::size_t>(out.bits_allocated / 8);
    if (count / width < expected) length_error(count);
    if (width == 1) {
      out.max_sample = Normalize(bytes, expected, shift, out.bits_stored, out.is_signed, out.samples);
    } else {
      std::vector<uint32_t> words(expected);
      std::memcpy(words.data(), bytes, expected * 4);  // little-endian host and transfer syntax
      out.max_sample = Normalize(words.data(), expected, shift, out.bits_stored, out.is_signed, out.samples);
    }
  }
}

void ReadNativePixels(DicomImage& out, std::size_t available, const std::function<void(char*, std::size_t)>& read) {
  const std::size_t expected = out.SampleCount();
  const std::size_t width = static_cast<std::size_t>(out.bits_allocated / 8);
  if (available < expected * width) PixelLengthError(out, available);
  out.samples.resize(expected * width);
  read(reinterpret_cast<char*>(out.samples.data()), expected * width);
  const unsigned shift = static_cast<unsigned>(out.high_bit + 1 - out.bits_stored);
  if (width == 1) {
    out.max_sample = NormalizeInto(out.samples.data(), out.samples.data(), expected, shift, out.bits_stored, out.is_signed);
  } else if (width == 2) {
    auto* words = reinterpret_cast<uint16_t*>(out.samples.data());
    out.max_sample = NormalizeInto(words, words, expected, shift, out.bits_stored, out.is_signed);
  } else {
    auto* words = reinterpret_cast<uint32_t*>(out.samples.data());
    out.max_sample = NormalizeInto(words, words, expected, shift, out.bits_stored, out.is_signed);
  }
}

DicomImage DecodeDicomImage(DcmDataset& ds, const std::string& name) {
  DicomImage out = DecodeDicomImageHeader(ds, name);
  DecodeDicomPixels(ds, out);
  return out;
}

}  // namespace procnode
