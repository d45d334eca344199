#include "dicom/prefilter.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace procnode {
namespace {

constexpr uint32_t kUndefinedLength = 0xFFFFFFFF;
constexpr int kMaxDepth = 64;

// A little-endian element walker that only ever moves forward, within bounds.
class Walker {
 public:
  explicit Walker(std::string_view bytes) : bytes_(bytes) {}

  std::size_t pos = 0;
  // The first element or item whose defined length runs past the end, described; empty if none.
  std::string overrun;

  bool Has(std::size_t n) const { return pos <= bytes_.size() && bytes_.size() - pos >= n; }
  uint16_t U16(std::size_t offset) const {
    return static_cast<uint16_t>(Byte(offset) | (Byte(offset + 1) << 8));
  }
  uint32_t U32(std::size_t offset) const {
    return static_cast<uint32_t>(U16(offset)) | (static_cast<uint32_t>(U16(offset + 2)) << 16);
  }
  char Char(std::size_t offset) const { return bytes_[pos + offset]; }
  bool Skip(uint64_t n) {
    if (!Has(n)) return false;
    pos += static_cast<std::size_t>(n);
    return true;
  }

  // One data element starting at `pos` (not an item or delimiter), its value and any nested
  // content included. `explicit_vr`: the encoding at this level. `value`, when given, is set to
  // the value's bytes (empty for an undefined length).
  bool SkipElement(bool explicit_vr, int depth, std::string_view* value = nullptr) {
    if (!Has(8) || U16(0) == 0xFFFE) return false;
    const std::size_t start = pos;
    uint32_t length = 0;
    bool nested_explicit = explicit_vr;
    if (explicit_vr) {
      const char a = Char(4), b = Char(5);
      if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z') return false;
      if (LongVr(a, b)) {
        if (!Has(12)) return false;
        length = U32(8);
        pos += 12;
      } else {
        length = U16(6);
        pos += 8;
      }
      nested_explicit = !(a == 'U' && b == 'N');  // UN of undefined length nests implicit VR (PS3.5 6.2.2)
    } else {
      length = U32(4);
      pos += 8;
    }
    if (value != nullptr) *value = {};
    if (length != kUndefinedLength) {
      if (value != nullptr && Has(length)) *value = bytes_.substr(pos, length);
      if (!Has(length)) NoteOverrun(start, length);
      return Skip(length);
    }
    return SkipUntilSequenceEnd(nested_explicit, depth + 1);
  }

 private:
  unsigned Byte(std::size_t offset) const { return static_cast<unsigned char>(bytes_[pos + offset]); }

  static bool LongVr(char a, char b) {
    static constexpr const char* kLong[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
    return std::any_of(std::begin(kLong), std::end(kLong), [&](const char* vr) { return vr[0] == a && vr[1] == b; });
  }

  // Items (defined length: skipped whole; undefined: elements up to the item delimiter) up to and
  // including the sequence delimiter. Encapsulated pixel data is a sequence of defined-length items.
  bool SkipUntilSequenceEnd(bool explicit_vr, int depth) {
    if (depth > kMaxDepth) return false;
    while (Has(8)) {
      const uint16_t group = U16(0), element = U16(2);
      const uint32_t length = U32(4);
      if (group != 0xFFFE) return false;
      pos += 8;
      if (element == 0xE0DD) return true;  // sequence delimitation
      if (element != 0xE000) return false;
      if (length != kUndefinedLength) {
        if (!Has(length)) NoteOverrun(pos - 8, length);
        if (!Skip(length)) return false;
        continue;
      }
      for (;;) {
        if (!Has(8)) return false;
        if (U16(0) == 0xFFFE && U16(2) == 0xE00D) {  // item delimitation
          pos += 8;
          break;
        }
        if (!SkipElement(explicit_vr, depth)) return false;
      }
    }
    return false;
  }

  void NoteOverrun(std::size_t start, uint32_t length) {
    if (!overrun.empty()) return;
    char tag[16];
    std::snprintf(tag, sizeof tag, "(%04X,%04X)", static_cast<unsigned>(U16At(start)), static_cast<unsigned>(U16At(start + 2)));
    overrun = std::string(U16At(start) == 0xFFFE ? "item " : "element ") + tag + " at byte " + std::to_string(start) +
              " claims " + std::to_string(length) + " bytes, " + std::to_string(bytes_.size() - pos) + " are left";
  }
  unsigned U16At(std::size_t at) const {
    return static_cast<unsigned char>(bytes_[at]) | static_cast<unsigned>(static_cast<unsigned char>(bytes_[at + 1])) << 8;
  }

  std::string_view bytes_;
};

bool IsTextVr(char a, char b) {
  static constexpr const char* kText[] = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT",
                                          "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"};
  return std::any_of(std::begin(kText), std::end(kText), [&](const char* vr) { return vr[0] == a && vr[1] == b; });
}

std::string_view Trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\0' || text.back() == ' ')) text.remove_suffix(1);
  return text;
}

// A walker at the first dataset element of a Part 10 file, and the dataset's VR encoding; nullopt
// when the file is not the plain little-endian case.
std::optional<std::pair<Walker, bool>> DatasetStart(std::string_view file, std::string_view* syntax = nullptr) {
  if (file.size() < 132 || file.substr(128, 4) != "DICM") return std::nullopt;
  Walker walker(file);
  walker.pos = 132;
  std::string_view transfer_syntax;
  while (walker.Has(8) && walker.U16(0) == 0x0002) {  // meta header: always explicit VR little endian
    const bool is_syntax = walker.U16(2) == 0x0010;
    std::string_view value;
    if (!walker.SkipElement(true, 0, &value)) return std::nullopt;
    if (is_syntax) transfer_syntax = Trimmed(value);
  }
  if (transfer_syntax.empty() || transfer_syntax == "1.2.840.10008.1.2.2" ||  // big endian
      transfer_syntax == "1.2.840.10008.1.2.1.99" || transfer_syntax == "1.2.840.10008.1.2.4.95") {  // deflated
    return std::nullopt;
  }
  if (syntax != nullptr) *syntax = transfer_syntax;
  return std::make_pair(walker, transfer_syntax != "1.2.840.10008.1.2");
}

}  // namespace

std::optional<std::map<uint32_t, std::string>> TopLevelValues(std::string_view file, std::span<const uint32_t> tags) {
  auto start = DatasetStart(file);
  if (!start || tags.empty()) return std::nullopt;
  auto& [walker, explicit_vr] = *start;
  const uint32_t last = *std::max_element(tags.begin(), tags.end());
  std::map<uint32_t, std::string> values;
  while (walker.pos < file.size()) {
    if (!walker.Has(8)) return std::nullopt;
    const uint32_t tag = static_cast<uint32_t>(walker.U16(0)) << 16 | walker.U16(2);
    if (tag > last) break;  // elements come in ascending order: none wanted follows
    const bool wanted = std::find(tags.begin(), tags.end(), tag) != tags.end();
    // A wanted value of a non-text VR (UN above all: DCMTK shows it as hex) is left to DCMTK.
    if (wanted && explicit_vr && !IsTextVr(walker.Char(4), walker.Char(5))) return std::nullopt;
    std::string_view value;
    if (!walker.SkipElement(explicit_vr, 0, &value)) return std::nullopt;
    if (!wanted) continue;
    value = Trimmed(value);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    values[tag] = std::string(value);
  }
  return values;
}

std::string FirstLengthOverrun(std::string_view file, uint32_t stop_tag) {
  auto start = DatasetStart(file);
  if (!start) return "";
  auto& [walker, explicit_vr] = *start;
  while (walker.pos < file.size() && walker.Has(8)) {
    const uint32_t tag = static_cast<uint32_t>(walker.U16(0)) << 16 | walker.U16(2);
    if (tag >= stop_tag) break;
    if (!walker.SkipElement(explicit_vr, 0)) return walker.overrun;
  }
  return "";
}

std::optional<std::string> WithoutPrivateGroups(std::string_view file, std::span<const uint16_t> keep_groups,
                                                std::span<const uint32_t> keep_elements) {
  auto start = DatasetStart(file);
  if (!start) return std::nullopt;
  auto& [walker, explicit_vr] = *start;
  std::string out(file.substr(0, walker.pos));
  out.reserve(file.size());
  bool cut = false;
  while (walker.pos < file.size()) {
    const std::size_t start = walker.pos;
    if (!walker.Has(8)) return std::nullopt;
    const uint16_t group = walker.U16(0);
    const uint32_t tag = static_cast<uint32_t>(group) << 16 | walker.U16(2);
    if (!walker.SkipElement(explicit_vr, 0)) return std::nullopt;
    const uint16_t element = static_cast<uint16_t>(tag & 0xFFFF);
    const bool drop = (group & 1) != 0 && (std::find(keep_groups.begin(), keep_groups.end(), group) == keep_groups.end() ||
                                           (!keep_elements.empty() && !(element >= 0x0010 && element <= 0x00FF) &&
                                            !std::binary_search(keep_elements.begin(), keep_elements.end(), tag)));
    if (drop) {
      cut = true;
    } else {
      out.append(file.substr(start, walker.pos - start));
    }
  }
  if (!cut) return std::nullopt;
  return out;
}

std::optional<PixelDataSpan> LocateNativePixelData(std::string_view head) {
  std::string_view syntax;
  auto start = DatasetStart(head, &syntax);
  if (!start || (syntax != "1.2.840.10008.1.2" && syntax != "1.2.840.10008.1.2.1")) return std::nullopt;
  auto& [walker, explicit_vr] = *start;
  while (walker.Has(8)) {
    const uint32_t tag = static_cast<uint32_t>(walker.U16(0)) << 16 | walker.U16(2);
    if (tag > 0x7FE00010) return std::nullopt;
    if (tag == 0x7FE00010) {
      std::size_t header = 8;
      uint32_t length = walker.U32(4);
      if (explicit_vr) {
        if (!walker.Has(12) || walker.Char(4) != 'O' || (walker.Char(5) != 'B' && walker.Char(5) != 'W')) return std::nullopt;
        header = 12;
        length = walker.U32(8);
      }
      if (length == kUndefinedLength) return std::nullopt;  // encapsulated
      return PixelDataSpan{.element = walker.pos, .offset = walker.pos + header, .length = length};
    }
    if (!walker.SkipElement(explicit_vr, 0)) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace procnode
