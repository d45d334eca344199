#include "anonymizer/name_match.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

std::string Masked(const std::string& text, const std::string& term, std::size_t anywhere_from = 5) {
  const auto ranges = FindTerm(FoldText(text), PrepareTerm(term, anywhere_from));
  return MaskRanges(text, ranges, '*');
}

TEST(NameMatch, HalfWidthAndFullWidthFormsAreTheSameName) {
  // ﾔﾏﾀﾞ (half-width katakana, ISO 2022 IR 13) is ヤマダ (full-width); ＹＡＭＡＤＡ is yamada.
  EXPECT_EQ(Masked("\xe6\x82\xa3\xe8\x80\x85 \xe3\x83\xa4\xe3\x83\x9e\xe3\x83\x80 \xe6\xa7\x98",
                   "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e"),
            "\xe6\x82\xa3\xe8\x80\x85 *** \xe6\xa7\x98");
  EXPECT_EQ(Masked("\xef\xbc\xb9\xef\xbc\xa1\xef\xbc\xad\xef\xbc\xa1\xef\xbc\xa4\xef\xbc\xa1 was here", "Yamada"),
            "****** was here");
}

TEST(NameMatch, CaseAndAccentsFoldWhateverTheScript) {
  EXPECT_EQ(Masked("Dr. \xc3\x89MILE Zola", "\xc3\xa9mile"), "Dr. ***** Zola") << "precomposed";
  EXPECT_EQ(Masked("Dr. E\xcc\x81mile Zola", "\xc3\x89MILE"), "Dr. ****** Zola") << "combining accent: two code points";
  EXPECT_EQ(Masked("\xce\x9a\xce\x91\xce\xa1\xce\x91\xce\x93\xce\x99\xce\x91\xce\x9d\xce\x9d\xce\x97\xce\xa3", "\xce\x9a\xce\xb1\xcf\x81\xce\xb1\xce\xb3\xce\xb9\xce\xb1\xce\xbd\xce\xbd\xce\xb7\xcf\x82"),
            "***********") << "Greek, final sigma folds to sigma";
  EXPECT_EQ(Masked("\xd0\x9f\xd0\xb0\xd1\x86\xd0\xb8\xd0\xb5\xd0\xbd\xd1\x82 \xd0\x91\xd0\xa3\xd0\x9a\xd0\xad\xd0\xa1 ok", "\xd0\x91\xd1\x83\xd0\xba\xd1\x8d\xd1\x81"),
            "\xd0\x9f\xd0\xb0\xd1\x86\xd0\xb8\xd0\xb5\xd0\xbd\xd1\x82 ***** ok") << "Cyrillic";
  EXPECT_EQ(Masked("Stra\xc3\x9f" "e 1", "STRASSE"), "****** 1") << "a match ending inside the expansion of \xc3\x9f takes it whole";
}

TEST(NameMatch, UnspacedScriptsMatchAnywhereAndAtAnyLength) {
  // 王 (a one-character Chinese family name) inside 王小东先生; 김 inside 김철수님; Thai without spaces.
  EXPECT_EQ(Masked("\xe7\x8e\x8b\xe5\xb0\x8f\xe4\xb8\x9c\xe5\x85\x88\xe7\x94\x9f", "\xe7\x8e\x8b"),
            "*\xe5\xb0\x8f\xe4\xb8\x9c\xe5\x85\x88\xe7\x94\x9f");
  EXPECT_EQ(Masked("\xea\xb9\x80\xec\xb2\xa0\xec\x88\x98\xeb\x8b\x98", "\xea\xb9\x80"), "*\xec\xb2\xa0\xec\x88\x98\xeb\x8b\x98");
  EXPECT_EQ(Masked("\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93\xe0\xb8\xaa\xe0\xb8\xa1\xe0\xb8\x8a\xe0\xb8\xb2\xe0\xb8\xa2\xe0\xb8\xa1\xe0\xb8\xb2",
                   "\xe0\xb8\xaa\xe0\xb8\xa1\xe0\xb8\x8a\xe0\xb8\xb2\xe0\xb8\xa2"),
            "\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93*****\xe0\xb8\xa1\xe0\xb8\xb2") << "Thai";
  EXPECT_TRUE(IsUnspacedScript("\xe7\x8e\x8b"));
  EXPECT_TRUE(IsUnspacedScript("\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e"));
  EXPECT_FALSE(IsUnspacedScript("Wang"));
  EXPECT_FALSE(IsUnspacedScript("Wang \xe7\x8e\x8b")) << "mixed scripts keep the word rule";
}

TEST(NameMatch, ShortTermsInSpacedScriptsMatchWholeWordsOnly) {
  EXPECT_EQ(Masked("Lev met Levin", "LEV"), "*** met Levin");
  EXPECT_EQ(Masked("\xd0\x9b\xd0\xb5\xd0\xb2 \xd0\x9b\xd0\xb5\xd0\xb2\xd0\xb8\xd0\xbd", "\xd0\xbb\xd0\xb5\xd0\xb2"),
            "*** \xd0\x9b\xd0\xb5\xd0\xb2\xd0\xb8\xd0\xbd") << "Cyrillic letters are word characters";
  EXPECT_EQ(Masked("Lev\xe5\x85\x88\xe7\x94\x9f", "Lev"), "***\xe5\x85\x88\xe7\x94\x9f") << "a CJK neighbour is a boundary";
  EXPECT_EQ(Masked("ID12345X", "12345", 0), "ID*****X") << "identifiers match anywhere";
}

TEST(NameMatch, InvalidBytesStandForThemselves) {
  const std::string latin1 = "M\xfcller, Hans";  // ISO 8859-1 bytes, not UTF-8
  EXPECT_EQ(Masked(latin1, "M\xfcller"), "******, Hans");
  EXPECT_EQ(FoldText(latin1).source.size(), FoldText(latin1).folded.size() + 1);
}

}  // namespace
}  // namespace procnode
