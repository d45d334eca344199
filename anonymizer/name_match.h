// Finding PHI terms (names, IDs) in text the way a reader would see them, whatever the script.
//
// Text and terms are compared after Unicode compatibility decomposition with case folding (ICU's
// NFKC_Casefold data in decomposed form), one code point at a time: half-width and full-width
// forms, precomposed and combining accents, upper and lower case all compare equal ("ﾔﾏﾀﾞ" is
// "ヤマダ", "ＹＡＭＡＤＡ" is "yamada", "ÉMILE" is "émile"). Terms written in scripts that put no
// spaces between words (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar) match anywhere and at any
// length (a one-character Chinese family name included); other terms shorter than five code points
// match whole words only (no letter or digit of a spaced script beside them). Text is UTF-8;
// bytes that are not valid UTF-8 stand for themselves (binary values, legacy bytes). Callers
// decode DICOM text from its Specific Character Set first (DcmSpecificCharacterSet).
// Thread-safe (per-thread caches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace procnode {

// `text` folded for matching, with, for each folded byte, the offset in `text` of the code point
// it came from (source.size() == folded.size() + 1; the last entry is text.size()).
struct FoldedText {
  std::string folded;
  std::vector<uint32_t> source;
};

FoldedText FoldText(std::string_view text);
// The folded form alone (terms; text whose offsets are not needed).
std::string FoldTerm(std::string_view term);

// Whether `term` is written in scripts without spaces between words (then it matches anywhere,
// whatever its length): at least one such letter and no letter of another script.
bool IsUnspacedScript(std::string_view term);
// The number of code points in `text` (an invalid byte counts as one).
std::size_t CodePoints(std::string_view text);

// A PHI term prepared once for many searches.
struct NameTerm {
  std::string folded;
  bool whole_word = false;
};
// `minimum_code_points_for_anywhere`: terms shorter than this match whole words only (5 for
// names and IDs), unless written in an unspaced script.
NameTerm PrepareTerm(std::string_view term, std::size_t minimum_code_points_for_anywhere = 5);

// The [begin, end) byte ranges of `text` (the original, not the folded form) where `term` occurs.
std::vector<std::pair<std::size_t, std::size_t>> FindTerm(const FoldedText& text, const NameTerm& term);
// Whether `term` occurs in `folded` (no offsets needed).
bool ContainsTerm(const std::string& folded, const NameTerm& term);

// `text` with every range (merged where they overlap) replaced by one `mask` per code point.
std::string MaskRanges(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>> ranges, char mask);

}  // namespace procnode
