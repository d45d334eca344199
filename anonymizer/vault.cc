#include "anonymizer/vault.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <pqxx/pqxx>

#include "core/error.h"
#include "core/text.h"
#include "pg/migrations.h"
#include "pg/pg.h"

namespace procnode {


namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string FromHex(const std::string& hex) {
  if (hex.size() % 2 != 0) throw Error(ErrorCode::kInvalidInput, "vault key: odd number of hex digits");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const auto byte = std::stoi(hex.substr(i, 2), nullptr, 16);
    out.push_back(static_cast<char>(byte));
  }
  return out;
}

nlohmann::json IdentityJson(const PatientIdentity& id) {
  return {{"patient_name", id.patient_name}, {"patient_id", id.patient_id}, {"birth_date", id.birth_date},
          {"sex", id.sex}, {"accession_number", id.accession_number}, {"study_date", id.study_date},
          {"study_instance_uid", id.study_instance_uid}};
}

PatientIdentity IdentityFrom(const nlohmann::json& j) {
  return {j.value("patient_name", ""), j.value("patient_id", ""), j.value("birth_date", ""), j.value("sex", ""),
          j.value("accession_number", ""), j.value("study_date", ""), j.value("study_instance_uid", "")};
}

// One connection per call (re-identification is rare; no pool kept open on the PHI database).
template <typename F>
auto WithVault(const std::string& dsn, const char* what, F&& body) {
  pg::ConnectionPool pool(dsn, "PHI vault", 0);
  return pg::Transaction(pool, what, std::forward<F>(body));
}

void AuditRow(pqxx::work& tx, const std::string& who, const std::string& action, const std::string& project,
              const std::string& pseudonym, const std::string& reason, const std::string& outcome) {
  tx.exec_params("INSERT INTO audit (who, action, project, pseudonym, reason, outcome) VALUES ($1, $2, $3, $4, $5, $6)", who,
                 action, project, pseudonym, reason, outcome);
}

}  // namespace

nlohmann::json ReidentifiedJson(const Reidentified& found) {
  const PatientIdentity& id = found.identity;
  return {{"patient_name", id.patient_name}, {"patient_id", id.patient_id}, {"birth_date", id.birth_date}, {"sex", id.sex},
          {"accession_number", id.accession_number}, {"study_date", id.study_date}, {"uids", found.uids}};
}

VaultKeys ParseVaultKeys(const std::string& text) {
  VaultKeys keys;
  for (const std::string& item : Split(text, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos || colon == 0) throw Error(ErrorCode::kInvalidInput, "vault keys: expected <id>:<64 hex digits>");
    const std::string id = item.substr(0, colon), key = FromHex(item.substr(colon + 1));
    if (key.size() != 32) throw Error(ErrorCode::kInvalidInput, "vault key " + id + ": must be 32 bytes (64 hex digits)");
    if (keys.current.empty()) keys.current = id;
    keys.keys[id] = key;
  }
  if (keys.current.empty()) throw Error(ErrorCode::kInvalidInput, "vault keys: none given");
  return keys;
}

std::string Seal(const std::string& key, const std::string& plaintext) {
  if (key.size() != 32) throw Error(ErrorCode::kInvalidInput, "vault: AES-256-GCM needs a 32-byte key");
  unsigned char nonce[12];
  if (RAND_bytes(nonce, sizeof nonce) != 1) throw Error(ErrorCode::kInternal, "vault: no random nonce");
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(reinterpret_cast<char*>(nonce), sizeof nonce);
  out.resize(sizeof nonce + plaintext.size() + 16);
  int length = 0, final_length = 0;
  auto* cipher = reinterpret_cast<unsigned char*>(out.data()) + sizeof nonce;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.data()), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), cipher, &length, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), cipher + length, &final_length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, cipher + length + final_length) != 1) {
    throw Error(ErrorCode::kInternal, "vault: AES-256-GCM encryption failed");
  }
  return out;
}

std::string Open(const std::string& key, const std::string& sealed) {
  if (key.size() != 32 || sealed.size() < 28) throw Error(ErrorCode::kInternal, "vault: a sealed value is malformed");
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  const auto* cipher = nonce + 12;
  const int cipher_length = static_cast<int>(sealed.size() - 28);
  std::string plain(static_cast<std::size_t>(cipher_length), '\0');
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0, final_length = 0;
  unsigned char tag[16];
  std::copy(cipher + cipher_length, cipher + cipher_length + 16, tag);
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.data()), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &length, cipher, cipher_length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + length, &final_length) != 1) {
    throw Error(ErrorCode::kInternal, "vault: a sealed value does not open (wrong key or tampered row)");
  }
  return plain;
}

PhiVault::PhiVault(std::string dsn, VaultKeys keys) : dsn_(std::move(dsn)), keys_(std::move(keys)) {
  if (dsn_.empty()) throw Error(ErrorCode::kInvalidInput, "PHI vault: no database configured (PhiVault / PROCNODE_PHI_VAULT)");
  if (keys_.keys.empty()) throw Error(ErrorCode::kInvalidInput, "PHI vault: no key configured (PROCNODE_VAULT_KEYS)");
}

void PhiVault::Migrate() { ApplyMigrations(dsn_, VaultMigrations(), "PHI vault"); }

void PhiVault::Store(const std::string& project, const std::string& pseudonym, const PatientIdentity& identity,
                     const std::map<std::string, std::string>& uid_map, const std::string& who) {
  const std::string& key = keys_.keys.at(keys_.current);
  WithVault(dsn_, "store", [&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO identities (project, pseudonym, key_id, sealed) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (project, pseudonym) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, updated_at = now()",
        project, pseudonym, keys_.current, pqxx::binarystring(Seal(key, IdentityJson(identity).dump())));
    for (const auto& [original, remapped] : uid_map) {
      if (original == remapped) continue;
      tx.exec_params(
          "INSERT INTO uid_map (project, remapped_uid, pseudonym, key_id, sealed) VALUES ($1, $2, $3, $4, $5)"
          " ON CONFLICT (project, remapped_uid) DO NOTHING",
          project, remapped, pseudonym, keys_.current, pqxx::binarystring(Seal(key, original)));
    }
    AuditRow(tx, who, "store", project, pseudonym, "", std::to_string(uid_map.size()) + " UID(s)");
    return 0;
  });
}

Reidentified PhiVault::Reidentify(const std::string& project, const std::string& pseudonym, const std::string& who,
                                  const std::string& reason) {
  if (reason.empty()) throw Error(ErrorCode::kInvalidInput, "re-identification needs a reason (it is audited)");
  return WithVault(dsn_, "reidentify", [&](pqxx::work& tx) {
    const auto rows = tx.exec_params("SELECT key_id, sealed FROM identities WHERE project = $1 AND pseudonym = $2", project, pseudonym);
    if (rows.empty()) {
      AuditRow(tx, who, "reidentify", project, pseudonym, reason, "unknown pseudonym");
      tx.commit();
      throw Error(ErrorCode::kNotFound, "PHI vault: no identity for " + pseudonym + " in project " + project);
    }
    auto key_for = [&](const std::string& id) -> const std::string& {
      const auto it = keys_.keys.find(id);
      if (it == keys_.keys.end()) throw Error(ErrorCode::kInternal, "PHI vault: key " + id + " is not configured");
      return it->second;
    };
    Reidentified out;
    out.identity = IdentityFrom(nlohmann::json::parse(
        Open(key_for(rows[0][0].as<std::string>()), pqxx::binarystring(rows[0][1]).str())));
    for (const auto& row : tx.exec_params("SELECT remapped_uid, key_id, sealed FROM uid_map WHERE project = $1 AND pseudonym = $2",
                                          project, pseudonym)) {
      out.uids[row[0].as<std::string>()] = Open(key_for(row[1].as<std::string>()), pqxx::binarystring(row[2]).str());
    }
    AuditRow(tx, who, "reidentify", project, pseudonym, reason, "granted");
    return out;
  });
}

void PhiVault::Refused(const std::string& project, const std::string& pseudonym, const std::string& who, const std::string& why) {
  WithVault(dsn_, "audit", [&](pqxx::work& tx) {
    AuditRow(tx, who, "refused", project, pseudonym, why, "refused");
    return 0;
  });
}

nlohmann::json PhiVault::Audit(int limit) {
  return WithVault(dsn_, "audit", [&](pqxx::work& tx) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : tx.exec_params(
             "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), who, action, project, pseudonym, reason, outcome"
             " FROM audit ORDER BY id DESC LIMIT $1",
             limit)) {
      rows.push_back({{"at", row[0].as<std::string>()}, {"who", row[1].as<std::string>()}, {"action", row[2].as<std::string>()},
                      {"project", row[3].as<std::string>()}, {"pseudonym", row[4].as<std::string>()},
                      {"reason", row[5].as<std::string>()}, {"outcome", row[6].as<std::string>()}});
    }
    return rows;
  });
}

}  // namespace procnode
