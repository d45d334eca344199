#include "anonymizer/name_match.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace procnode {
namespace {

// The decomposed NFKC_Casefold normalizer (compatibility decomposition + case folding).
const icu::Normalizer2& Folder() {
  static const icu::Normalizer2* const folder = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getInstance(nullptr, "nfkc_cf", UNORM2_DECOMPOSE, status);
    if (U_FAILURE(status) || n == nullptr) {
      throw Error(ErrorCode::kInternal, std::string("ICU: no NFKC_Casefold data (") + u_errorName(status) + ")");
    }
    return n;
  }();
  return *folder;
}

// One code point's folded UTF-8 form (cached per thread).
const std::string& FoldCodePoint(UChar32 c) {
  thread_local std::unordered_map<UChar32, std::string> cache;
  const auto it = cache.find(c);
  if (it != cache.end()) return it->second;
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString folded = Folder().normalize(icu::UnicodeString(c), status);
  std::string utf8;
  if (U_FAILURE(status)) {
    icu::UnicodeString(c).toUTF8String(utf8);
  } else {
    folded.toUTF8String(utf8);
  }
  if (cache.size() > 65536) cache.clear();
  return cache.emplace(c, std::move(utf8)).first->second;
}

bool UnspacedScriptLetter(UChar32 c) {
  UErrorCode status = U_ZERO_ERROR;
  switch (uscript_getScript(c, &status)) {
    case USCRIPT_HAN:
    case USCRIPT_HIRAGANA:
    case USCRIPT_KATAKANA:
    case USCRIPT_KATAKANA_OR_HIRAGANA:
    case USCRIPT_HANGUL:
    case USCRIPT_THAI:
    case USCRIPT_LAO:
    case USCRIPT_KHMER:
    case USCRIPT_MYANMAR:
    case USCRIPT_YI:
      return true;
    default:
      return false;
  }
}

// Whether the code point is part of a word of a spaced script (a letter or digit that is not of an
// unspaced script; marks count with their letter).
bool SpacedWordCharacter(UChar32 c) {
  if (c < 0) return false;
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return (u_isalnum(c) || (U_GET_GC_MASK(c) & U_GC_M_MASK) != 0) && !UnspacedScriptLetter(c);
}

// The code point that ends just before byte `at` of `s` (or -1), and the one that starts at `at`.
UChar32 Before(const std::string& s, std::size_t at) {
  if (at == 0) return -1;
  int32_t i = static_cast<int32_t>(at);
  UChar32 c;
  U8_PREV(reinterpret_cast<const uint8_t*>(s.data()), 0, i, c);
  return c;
}

UChar32 At(const std::string& s, std::size_t at) {
  if (at >= s.size()) return -1;
  int32_t i = static_cast<int32_t>(at);
  UChar32 c;
  U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i, static_cast<int32_t>(s.size()), c);
  return c;
}

template <typename OnCodePoint>
void ForEachCodePoint(std::string_view text, OnCodePoint&& on) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < length;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);  // c < 0 for an invalid sequence; i moves past it
    if (c < 0) i = start + 1;       // one byte at a time, each standing for itself
    on(c, static_cast<std::size_t>(start), static_cast<std::size_t>(i));
  }
}

}  // namespace

FoldedText FoldText(std::string_view text) {
  FoldedText out;
  out.folded.reserve(text.size());
  out.source.reserve(text.size() + 1);
  ForEachCodePoint(text, [&](UChar32 c, std::size_t start, std::size_t end) {
    if (c >= 0 && c < 0x80) {
      out.folded.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      out.source.push_back(static_cast<uint32_t>(start));
    } else if (c < 0) {
      out.folded.append(text.substr(start, end - start));
      for (std::size_t k = start; k < end; ++k) out.source.push_back(static_cast<uint32_t>(start));
    } else {
      const std::string& folded = FoldCodePoint(c);
      out.folded += folded;
      out.source.insert(out.source.end(), folded.size(), static_cast<uint32_t>(start));
    }
  });
  out.source.push_back(static_cast<uint32_t>(text.size()));
  return out;
}

std::string FoldTerm(std::string_view term) { return FoldText(term).folded; }

bool IsUnspacedScript(std::string_view term) {
  bool unspaced = false, other = false;
  ForEachCodePoint(term, [&](UChar32 c, std::size_t, std::size_t) {
    if (c < 0 || !u_isalpha(c)) return;
    UErrorCode status = U_ZERO_ERROR;
    const UScriptCode script = uscript_getScript(c, &status);
    if (script == USCRIPT_COMMON || script == USCRIPT_INHERITED) return;  // marks such as the sound mark ﾞ
    (UnspacedScriptLetter(c) ? unspaced : other) = true;
  });
  return unspaced && !other;
}

std::size_t CodePoints(std::string_view text) {
  std::size_t n = 0;
  ForEachCodePoint(text, [&](UChar32, std::size_t, std::size_t) { ++n; });
  return n;
}

NameTerm PrepareTerm(std::string_view term, std::size_t minimum_code_points_for_anywhere) {
  return {FoldTerm(term), !IsUnspacedScript(term) && CodePoints(term) < minimum_code_points_for_anywhere};
}

namespace {

bool WholeWordAt(const std::string& folded, std::size_t at, std::size_t length) {
  return !SpacedWordCharacter(Before(folded, at)) && !SpacedWordCharacter(At(folded, at + length));
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> FindTerm(const FoldedText& text, const NameTerm& term) {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  if (term.folded.empty()) return ranges;
  const std::string& s = text.folded;
  for (std::size_t i = s.find(term.folded); i != std::string::npos; i = s.find(term.folded, i + 1)) {
    if (term.whole_word && !WholeWordAt(s, i, term.folded.size())) continue;
    // From the first source code point to the end of the last one: a match that ends inside one
    // code point's expansion (the "ss" of "ß") takes that code point whole.
    const std::size_t last = i + term.folded.size() - 1;
    std::size_t k = last + 1;
    while (k < s.size() && text.source[k] == text.source[last]) ++k;
    const std::size_t end = text.source[k];
    ranges.emplace_back(text.source[i], end);
  }
  return ranges;
}

bool ContainsTerm(const std::string& folded, const NameTerm& term) {
  if (term.folded.empty()) return false;
  for (std::size_t i = folded.find(term.folded); i != std::string::npos; i = folded.find(term.folded, i + 1)) {
    if (!term.whole_word || WholeWordAt(folded, i, term.folded.size())) return true;
  }
  return false;
}

std::string MaskRanges(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>> ranges, char mask) {
  std::sort(ranges.begin(), ranges.end());
  std::string out;
  std::size_t at = 0;
  for (std::size_t r = 0; r < ranges.size();) {
    std::size_t begin = std::max(ranges[r].first, at), end = ranges[r].second;
    for (++r; r < ranges.size() && ranges[r].first <= end; ++r) end = std::max(end, ranges[r].second);
    if (begin >= end) continue;
    out.append(text.substr(at, begin - at));
    out.append(CodePoints(text.substr(begin, end - begin)), mask);
    at = end;
  }
  out.append(text.substr(std::min(at, text.size())));
  return out;
}

}  // namespace procnode
