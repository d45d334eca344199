// DICOM text decoded from its Specific Character Set (0008,0005) to UTF-8, so that names can be
// compared as Unicode whatever the object's encoding (PS3.5 6.1 and Annexes H-K).
//
// Single-byte sets, GB18030/GBK, UTF-8 and the ISO 2022 code extensions DCMTK can open here (Korean
// IR 149, Chinese IR 58, the single-byte ones) go through DCMTK's DcmSpecificCharacterSet.
// Japanese code extensions (ISO 2022 IR 87 JIS X 0208, IR 159 JIS X 0212, with IR 13 JIS X 0201
// katakana in G1 or IR 6) cannot be opened by DCMTK on glibc's iconv, so they are decoded here: the
// escape sequences are followed, each character is re-encoded as EUC-JP (the same code points
// with the high bit set) and glibc's iconv turns that into UTF-8. Delimiters (CR, LF, FF, HT, and
// ^ = \ where the VR has them) return to the initial sets, as PS3.5 6.1.2.5.3 requires.
// Not thread-safe per object; create one per thread.
#pragma once

#include <dcmtk/dcmdata/dcitem.h>

#include <memory>
#include <optional>
#include <string>

namespace procnode {

// Text VRs whose values are in the Specific Character Set (PS3.5 6.1.2.3).
bool IsCharsetText(DcmEVR vr);

class DicomTextDecoder {
 public:
  // The decoder of `item`'s Specific Character Set (ASCII/UTF-8 pass through when absent).
  explicit DicomTextDecoder(DcmItem& item);
  ~DicomTextDecoder();
  DicomTextDecoder(const DicomTextDecoder&) = delete;
  DicomTextDecoder& operator=(const DicomTextDecoder&) = delete;

  // Whether values need decoding at all (a set other than the default, ISO_IR 6 or ISO_IR 192).
  bool needed() const { return needed_; }
  // Whether the declared set(s) can be decoded.
  bool usable() const { return usable_; }
  const std::string& declared() const { return declared_; }
  // `raw` (a value of VR `vr`) as UTF-8; values of other VRs unchanged; nullopt when it cannot be
  // decoded (an unknown set, an invalid sequence).
  std::optional<std::string> Decode(const std::string& raw, DcmEVR vr);

 private:
  class Japanese;
  std::string declared_;
  bool needed_ = false, usable_ = false;
  std::unique_ptr<Japanese> japanese_;
  std::unique_ptr<class DcmSpecificCharacterSet> dcmtk_;
};

// Every text value of `item` and of its sequence items decoded to UTF-8, and (0008,0005) set to
// ISO_IR 192 wherever a set was declared. Error(kInvalidInput, "NAME: text in Specific Character
// Set ... cannot be decoded ...") when some value cannot be: nothing is changed then.
void ConvertTextToUtf8(DcmItem& item, const std::string& name);

}  // namespace procnode
