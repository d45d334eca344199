#include "core/json_limits.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

std::string Nested(int levels, char open, char close) {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(JsonNestingDepth, CountsArraysAndObjectsTogether) {
  EXPECT_EQ(JsonNestingDepth("{}"), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, {"b": [2]}]})"), 4);
  EXPECT_EQ(JsonNestingDepth("42"), 0);
}

TEST(JsonNestingDepth, IgnoresBracketsInsideStringsAndEscapedQuotes) {
  EXPECT_EQ(JsonNestingDepth(R"({"a": "[[[[{{{{"})"), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"a": "\"[[[["})"), 1);
  EXPECT_EQ(JsonNestingDepth(R"(["\\", [1]])"), 2);
}

TEST(JsonNestingDepth, StopsOnceTheLimitIsPassed) {
  EXPECT_EQ(JsonNestingDepth(Nested(1000, '[', ']'), 64), 65);
  EXPECT_EQ(JsonNestingDepth(Nested(64, '[', ']'), 64), 64);
  EXPECT_EQ(JsonNestingDepth(std::string(100000, '{'), 10), 11);
}

TEST(Utf8, FindsTheFirstInvalidSequence) {
  EXPECT_EQ(InvalidUtf8At("plain"), std::nullopt);
  EXPECT_EQ(InvalidUtf8At("Gr\xC3\xBC\xC3\x9F" "e \xE5\xB1\xB1\xE7\x94\xB0 \xF0\x9F\x98\x80"), std::nullopt);
  EXPECT_EQ(InvalidUtf8At("ab\xFF"), 2u);
  EXPECT_EQ(InvalidUtf8At("\xC0\xAF"), 0u) << "overlong '/'";
  EXPECT_EQ(InvalidUtf8At("x\xED\xA0\x80"), 1u) << "a surrogate";
  EXPECT_EQ(InvalidUtf8At("\xF4\x90\x80\x80"), 0u) << "above U+10FFFF";
  EXPECT_EQ(InvalidUtf8At("\xE5\xB1"), 0u) << "cut short";
}

TEST(Utf8, ReplacesInvalidBytesAndKeepsTheRest) {
  EXPECT_EQ(ValidUtf8("job \xFF!"), "job \xEF\xBF\xBD!");
  EXPECT_EQ(ValidUtf8("\xE5\xB1\xB1"), "\xE5\xB1\xB1");
  EXPECT_EQ(InvalidUtf8At(ValidUtf8("\xC0\xAF\xED\xA0\x80\xF8")), std::nullopt);
}

}  // namespace
}  // namespace procnode
