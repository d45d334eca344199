#include "anonymizer/dicom_text.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcspchrs.h>
#include <iconv.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/text.h"

namespace procnode {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  return s;
}

const char* Delimiters(DcmEVR vr) {
  switch (vr) {
    case EVR_PN: return "\\^=";
    case EVR_LO:
    case EVR_SH:
    case EVR_UC: return "\\";
    default: return "";
  }
}

}  // namespace

bool IsCharsetText(DcmEVR vr) {
  switch (vr) {
    case EVR_PN:
    case EVR_LO:
    case EVR_SH:
    case EVR_ST:
    case EVR_LT:
    case EVR_UT:
    case EVR_UC:
      return true;
    default:
      return false;
  }
}

// ISO 2022 Japanese as DICOM uses it (PS3.5 Annex H, PS3.3 C.12.1.1.2): G0 is ASCII (ESC ( B), JIS
// X 0201 Romaji (ESC ( J), JIS X 0208 (ESC $ B) or JIS X 0212 (ESC $ ( D); G1 is JIS X 0201
// katakana (ESC ) I, and by default when the first value is ISO 2022 IR 13).
class DicomTextDecoder::Japanese {
 public:
  Japanese(bool katakana_default) : katakana_default_(katakana_default) {
    iconv_ = iconv_open("UTF-8", "EUC-JP");
  }
  ~Japanese() {
    if (iconv_ != reinterpret_cast<iconv_t>(-1)) iconv_close(iconv_);
  }
  bool usable() const { return iconv_ != reinterpret_cast<iconv_t>(-1); }

  std::optional<std::string> Decode(const std::string& raw, const std::string& delimiters) {
    enum class G0 { kAscii, kJisX0208, kJisX0212 } g0 = G0::kAscii;
    bool katakana = katakana_default_;
    std::string euc;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const auto c = static_cast<unsigned char>(raw[i]);
      if (c == 0x1B) {
        const std::string rest = raw.substr(i + 1, 3);
        if (rest.rfind("(B", 0) == 0 || rest.rfind("(J", 0) == 0) { g0 = G0::kAscii; i += 2; }
        else if (rest.rfind("$B", 0) == 0 || rest.rfind("$@", 0) == 0) { g0 = G0::kJisX0208; i += 2; }
        else if (rest.rfind("$(D", 0) == 0) { g0 = G0::kJisX0212; i += 3; }
        else if (rest.rfind(")I", 0) == 0) { katakana = true; i += 2; }
        else return std::nullopt;  // a set this object did not declare
        continue;
      }
      if (c == '\r' || c == '\n' || c == '\f' || c == '\t' || (g0 == G0::kAscii && delimiters.find(static_cast<char>(c)) != std::string::npos)) {
        g0 = G0::kAscii;  // delimiters return to the initial sets
        katakana = katakana_default_;
        euc.push_back(static_cast<char>(c));
        continue;
      }
      if (c >= 0x80) {
        if (!katakana || c < 0xA1 || c > 0xDF) return std::nullopt;
        euc.push_back(static_cast<char>(0x8E));  // EUC-JP's single shift 2: JIS X 0201 katakana
        euc.push_back(static_cast<char>(c));
        continue;
      }
      if (g0 == G0::kAscii || c < 0x21 || c > 0x7E) {
        euc.push_back(static_cast<char>(c));
        continue;
      }
      if (i + 1 >= raw.size()) return std::nullopt;
      const auto c2 = static_cast<unsigned char>(raw[i + 1]);
      if (c2 < 0x21 || c2 > 0x7E) return std::nullopt;
      if (g0 == G0::kJisX0212) euc.push_back(static_cast<char>(0x8F));  // single shift 3
      euc.push_back(static_cast<char>(c | 0x80));
      euc.push_back(static_cast<char>(c2 | 0x80));
      ++i;
    }
    return ToUtf8(euc);
  }

 private:
  std::optional<std::string> ToUtf8(const std::string& euc) {
    iconv(iconv_, nullptr, nullptr, nullptr, nullptr);
    std::string out(euc.size() * 2 + 16, '\0');
    char* in = const_cast<char*>(euc.data());
    std::size_t in_left = euc.size();
    char* to = out.data();
    std::size_t to_left = out.size();
    if (iconv(iconv_, &in, &in_left, &to, &to_left) == static_cast<std::size_t>(-1)) return std::nullopt;
    out.resize(out.size() - to_left);
    return out;
  }

  bool katakana_default_;
  iconv_t iconv_;
};

DicomTextDecoder::DicomTextDecoder(DcmItem& item) {
  OFString value;
  if (item.findAndGetOFStringArray(DCM_SpecificCharacterSet, value, OFFalse).bad()) return;
  declared_ = value.c_str();
  const auto sets = Split(declared_, '\\');
  std::vector<std::string> trimmed;
  for (const auto& s : sets) trimmed.push_back(Trimmed(s));
  if (trimmed.empty() || (trimmed.size() == 1 && (trimmed[0].empty() || trimmed[0] == "ISO_IR 6" || trimmed[0] == "ISO_IR 192"))) {
    return;
  }
  needed_ = true;
  bool japanese = false, other_multibyte = false;
  for (const auto& s : trimmed) {
    japanese = japanese || s == "ISO 2022 IR 87" || s == "ISO 2022 IR 159";
    other_multibyte = other_multibyte || s == "ISO 2022 IR 149" || s == "ISO 2022 IR 58";
  }
  if (japanese && !other_multibyte) {
    const bool only_japanese_sets = std::all_of(trimmed.begin(), trimmed.end(), [](const std::string& s) {
      return s.empty() || s == "ISO 2022 IR 6" || s == "ISO 2022 IR 13" || s == "ISO 2022 IR 87" || s == "ISO 2022 IR 159";
    });
    if (!only_japanese_sets) return;
    japanese_ = std::make_unique<Japanese>(trimmed[0] == "ISO 2022 IR 13");
    usable_ = japanese_->usable();
    return;
  }
  dcmtk_ = std::make_unique<DcmSpecificCharacterSet>();
  usable_ = dcmtk_->selectCharacterSet(value).good();
}

DicomTextDecoder::~DicomTextDecoder() = default;

std::optional<std::string> DicomTextDecoder::Decode(const std::string& raw, DcmEVR vr) {
  if (!needed_ || !IsCharsetText(vr) || raw.empty()) return raw;
  if (!usable_) return std::nullopt;
  if (japanese_) return japanese_->Decode(raw, Delimiters(vr));
  OFString out;
  if (dcmtk_->convertString(raw.data(), raw.size(), out, Delimiters(vr)).bad()) return std::nullopt;
  return std::string(out.c_str(), out.length());
}

namespace {

struct Change {
  DcmElement* element;
  std::string utf8;
};

// Collects the decoded values of `item` (recursively) without changing anything yet.
void Collect(DcmItem& item, DicomTextDecoder& decoder, const std::string& name, std::vector<Change>& changes,
             std::vector<DcmItem*>& declaring) {
  if (decoder.needed()) declaring.push_back(&item);
  for (unsigned long i = 0; i < item.card(); ++i) {
    DcmElement* el = item.getElement(i);
    if (el->ident() == EVR_SQ) {
      auto* sq = static_cast<DcmSequenceOfItems*>(el);
      for (unsigned long k = 0; k < sq->card(); ++k) {
        DcmItem& child = *sq->getItem(k);
        if (child.tagExists(DCM_SpecificCharacterSet)) {
          DicomTextDecoder own(child);
          Collect(child, own, name, changes, declaring);
          if (!own.needed()) declaring.push_back(&child);  // keep its declaration consistent
        } else {
          Collect(child, decoder, name, changes, declaring);
        }
      }
      continue;
    }
    if (!decoder.needed() || !IsCharsetText(el->ident())) continue;
    OFString value;
    if (el->getOFStringArray(value).bad() || value.empty()) continue;
    const std::string raw(value.c_str(), value.length());
    const auto decoded = decoder.Decode(raw, el->ident());
    if (!decoded) {
      throw Error(ErrorCode::kInvalidInput, name + ": text in Specific Character Set \"" + decoder.declared() +
                                                "\" cannot be decoded (" + DcmTag(el->getTag()).getTagName() +
                                                "): refused, since names in it could not be found");
    }
    if (*decoded != raw) changes.push_back({el, *decoded});
  }
}

}  // namespace

void ConvertTextToUtf8(DcmItem& item, const std::string& name) {
  DicomTextDecoder decoder(item);
  if (decoder.needed() && !decoder.usable()) {
    throw Error(ErrorCode::kInvalidInput, name + ": text in Specific Character Set \"" + decoder.declared() +
                                              "\" cannot be decoded (not supported here): refused, since names in it "
                                              "could not be found");
  }
  std::vector<Change> changes;
  std::vector<DcmItem*> declaring;
  Collect(item, decoder, name, changes, declaring);
  for (const auto& change : changes) {
    const OFCondition status = change.element->putString(change.utf8.c_str(), static_cast<Uint32>(change.utf8.size()));
    if (status.bad()) {
      throw Error(ErrorCode::kInternal, name + ": cannot write decoded " + DcmTag(change.element->getTag()).getTagName() +
                                            ": " + status.text());
    }
  }
  for (DcmItem* declared : declaring) {
    const OFCondition status = declared->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
    if (status.bad()) throw Error(ErrorCode::kInternal, name + ": cannot set SpecificCharacterSet: " + status.text());
  }
}

}  // namespace procnode
