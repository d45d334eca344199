// The PHI vault: a PostgreSQL database of its own (its own DSN and credentials; the job database
// never holds PHI) keeping, per project and pseudonym, the original identifiers and the UID map,
// sealed with AES-256-GCM under a key from configuration or the environment. Each sealed value
// carries its key id, so a new key can be introduced (VaultKeys) while old rows stay readable.
//
// Reidentify() is for the vault role only (the caller checks the role; the vault records who asked
// and why, and refusals are recorded too through Refused()). Every store and every access writes an
// audit row. Keys: 32 bytes, given as 64 hex characters. Errors: Error(kUnavailable) when the
// database cannot be reached; Error(kNotFound) for an unknown pseudonym; Error(kInvalidInput) for a
// bad key; Error(kInternal) when a sealed value does not open (wrong key, tampered row).
// Thread-safe (one connection per call).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "anonymizer/deidentify.h"

namespace procnode {

struct VaultKeys {
  std::string current;                      // key id new rows are sealed with
  std::map<std::string, std::string> keys;  // key id -> 32 raw bytes
};

// From "<id>:<64 hex>[,<id>:<64 hex>...]" (the first is current), e.g. PROCNODE_VAULT_KEYS.
VaultKeys ParseVaultKeys(const std::string& text);

// AES-256-GCM: nonce (12) || ciphertext || tag (16). Exposed for tests.
std::string Seal(const std::string& key, const std::string& plaintext);
std::string Open(const std::string& key, const std::string& sealed);

struct Reidentified {
  PatientIdentity identity;
  std::map<std::string, std::string> uids;  // remapped -> original
};

// What a re-identification answers (CLI and REST): the identity's fields and "uids".
nlohmann::json ReidentifiedJson(const Reidentified& found);

class PhiVault {
 public:
  PhiVault(std::string dsn, VaultKeys keys);
  // Applies schemas/vault migrations (idempotent).
  void Migrate();
  void Store(const std::string& project, const std::string& pseudonym, const PatientIdentity& identity,
             const std::map<std::string, std::string>& uid_map, const std::string& who);
  Reidentified Reidentify(const std::string& project, const std::string& pseudonym, const std::string& who,
                          const std::string& reason);
  void Refused(const std::string& project, const std::string& pseudonym, const std::string& who, const std::string& why);
  nlohmann::json Audit(int limit);

 private:
  std::string dsn_;
  VaultKeys keys_;
};

}  // namespace procnode
