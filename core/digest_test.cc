#include "core/digest.h"

#include <gtest/gtest.h>

#include <regex>

namespace procnode {
namespace {

TEST(Digest, Sha256HexMatchesTheFips180Vector) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, DerivedUidIsStableValidAndDistinct) {
  const std::string a = DerivedUid("series", "key-1");
  EXPECT_EQ(a, DerivedUid("series", "key-1"));
  EXPECT_NE(a, DerivedUid("series", "key-2"));
  EXPECT_NE(a, DerivedUid("instance", "key-1"));
  EXPECT_LE(a.size(), 64u);
  // PS3.5 9.1: components are digits without leading zeros, the 2.25 root for UUID-derived UIDs.
  EXPECT_TRUE(std::regex_match(a, std::regex(R"(2\.25\.(0|[1-9][0-9]*))"))) << a;
}

TEST(Digest, DerivedUidSeparatesNamespaceFromName) {
  EXPECT_NE(DerivedUid("ab", "c"), DerivedUid("a", "bc"));
}

TEST(Digest, HashForLogIsShortAndDoesNotContainTheInput) {
  const std::string tag = HashForLog("1.2.840.113619.2.55.3");
  EXPECT_EQ(tag.size(), 12u);
  EXPECT_EQ(tag.find("1.2.840"), std::string::npos);
}

}  // namespace
}  // namespace procnode
