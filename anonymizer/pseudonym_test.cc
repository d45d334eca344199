#include "anonymizer/pseudonym.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace procnode {
namespace {

TEST(Pseudonym, SamePatientSameProjectGivesTheSamePseudonym) {
  EXPECT_EQ(Pseudonym("k", "lung", "MRN123"), Pseudonym("k", "lung", "MRN123"));
  EXPECT_EQ(Pseudonym("k", "lung", "MRN123").size(), 22u);
}

TEST(Pseudonym, DiffersAcrossProjectsSecretsAndPatients) {
  const auto base = Pseudonym("k", "lung", "MRN123");
  EXPECT_NE(base, Pseudonym("k", "brain", "MRN123"));
  EXPECT_NE(base, Pseudonym("k2", "lung", "MRN123"));
  EXPECT_NE(base, Pseudonym("k", "lung", "MRN124"));
  EXPECT_EQ(base.find("MRN"), std::string::npos);
}

TEST(Pseudonym, RemappedUidsAreConsistentAndUnderThe225Root) {
  const auto uid = RemapUid("k", "lung", "1.2.3.4");
  EXPECT_EQ(uid, RemapUid("k", "lung", "1.2.3.4"));
  EXPECT_NE(uid, RemapUid("k", "lung", "1.2.3.5"));
  EXPECT_EQ(uid.rfind("2.25.", 0), 0u);
  EXPECT_LE(uid.size(), 64u);
}

TEST(Pseudonym, AnEmptySecretIsRefused) {
  EXPECT_THROW(Pseudonym("", "lung", "MRN123"), Error);
}

}  // namespace
}  // namespace procnode
