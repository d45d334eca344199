// The PHI vault against a real (throwaway) PostgreSQL: sealed storage, re-identification with an
// audit trail, key rotation, and a raw dump of the vault database holding no plaintext PHI.
#include "anonymizer/vault.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "anonymizer/leak_checker.h"
#include "core/error.h"
#include "jobs/test_database.h"

namespace procnode {
namespace {

const std::string kKey1 = "k1:" + std::string(64, 'a');
const std::string kKey2 = "k2:" + std::string(62, '0') + "ff";

PatientIdentity Identity() {
  return {"DOE^JOHN^QUINCY", "MRN-884422", "19650312", "M", "ACC-55501", "20200115", "1.2.826.0.1.3680043.99.1"};
}

TEST(VaultCrypto, SealedValuesOpenOnlyWithTheirKeyAndDetectTampering) {
  const VaultKeys keys = ParseVaultKeys(kKey1 + "," + kKey2);
  EXPECT_EQ(keys.current, "k1");
  const std::string sealed = Seal(keys.keys.at("k1"), "DOE^JOHN");
  EXPECT_EQ(sealed.find("DOE"), std::string::npos);
  EXPECT_EQ(Open(keys.keys.at("k1"), sealed), "DOE^JOHN");
  EXPECT_NE(Seal(keys.keys.at("k1"), "DOE^JOHN"), sealed);  // fresh nonce every time
  EXPECT_THROW(Open(keys.keys.at("k2"), sealed), Error);
  std::string tampered = sealed;
  tampered[14] ^= 1;
  EXPECT_THROW(Open(keys.keys.at("k1"), tampered), Error);
  EXPECT_THROW(ParseVaultKeys("k1:abcd"), Error);
  EXPECT_THROW(ParseVaultKeys(""), Error);
}

TEST(Vault, StoresSealedReidentifiesWithAReasonAndAuditsEveryAccess) {
  const std::string dsn = testing::FreshDatabase(false);
  PhiVault vault(dsn, ParseVaultKeys(kKey1));
  vault.Migrate();
  vault.Migrate();  // idempotent
  const std::map<std::string, std::string> uids{{"1.2.826.0.1.3680043.99.1", "2.25.111"}, {"1.2.826.0.1.3680043.99.2", "2.25.222"}};
  vault.Store("lungs", "PNABC", Identity(), uids, "pipeline");

  // Nothing readable in the database itself: every table dumped as text, scanned for the PHI.
  pqxx::connection connection(dsn);
  pqxx::work tx(connection);
  std::string dump;
  for (const char* table : {"identities", "uid_map", "audit"}) {
    for (const auto& row : tx.exec(std::string("SELECT t::text FROM ") + table + " t")) dump += row[0].as<std::string>() + "\n";
  }
  tx.commit();
  EXPECT_TRUE(ScanBytes(dump, PhiTerms(Identity(), {"1.2.826.0.1.3680043.99.1", "1.2.826.0.1.3680043.99.2"}), "vault dump").empty());

  EXPECT_THROW(vault.Reidentify("lungs", "PNABC", "officer", ""), Error);  // a reason is required
  const Reidentified back = vault.Reidentify("lungs", "PNABC", "officer", "incidental finding, ticket 4711");
  EXPECT_EQ(back.identity.patient_name, "DOE^JOHN^QUINCY");
  EXPECT_EQ(back.identity.patient_id, "MRN-884422");
  EXPECT_EQ(back.identity.birth_date, "19650312");
  EXPECT_EQ(back.uids.at("2.25.222"), "1.2.826.0.1.3680043.99.2");
  try {
    vault.Reidentify("lungs", "PNXYZ", "officer", "typo");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  vault.Refused("lungs", "PNABC", "viewer", "not in the vault role");
  const auto audit = vault.Audit(10);
  ASSERT_EQ(audit.size(), 4u);
  EXPECT_EQ(audit[0]["action"], "refused");
  EXPECT_EQ(audit[0]["who"], "viewer");
  EXPECT_EQ(audit[1]["outcome"], "unknown pseudonym");
  EXPECT_EQ(audit[2]["reason"], "incidental finding, ticket 4711");
  EXPECT_EQ(audit[2]["outcome"], "granted");
  EXPECT_EQ(audit[3]["action"], "store");

  // Rotation: a new current key seals new rows; rows sealed with the old one still open.
  PhiVault rotated(dsn, ParseVaultKeys(kKey2 + "," + kKey1));
  rotated.Store("lungs", "PNDEF", Identity(), {}, "pipeline");
  EXPECT_EQ(rotated.Reidentify("lungs", "PNABC", "officer", "after rotation").identity.patient_id, "MRN-884422");
  EXPECT_EQ(rotated.Reidentify("lungs", "PNDEF", "officer", "after rotation").identity.patient_id, "MRN-884422");
  PhiVault without_old(dsn, ParseVaultKeys(kKey2));
  EXPECT_THROW(without_old.Reidentify("lungs", "PNABC", "officer", "old key gone"), Error);
}

}  // namespace
}  // namespace procnode
