#include "anonymizer/pseudonym.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>

#include "core/digest.h"
#include "core/error.h"

namespace procnode {
namespace {

std::array<unsigned char, 32> Hmac(std::string_view secret, std::string_view project,
                                   std::string_view value) {
  if (secret.empty()) {
    throw Error(ErrorCode::kInvalidInput, "pseudonymisation secret is empty: configure one");
  }
  std::string message(project);
  message.push_back('\0');
  message.append(value);
  std::array<unsigned char, 32> out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    throw Error(ErrorCode::kInternal, "OpenSSL HMAC-SHA256 failed");
  }
  return out;
}

}  // namespace

std::string Pseudonym(std::string_view secret, std::string_view project,
                      std::string_view patient_identity) {
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const auto mac = Hmac(secret, project, patient_identity);
  std::string id = "PN";
  uint64_t bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < mac.size() && id.size() < 22; ++i) {
    bits = (bits << 8) | mac[i];
    count += 8;
    while (count >= 5 && id.size() < 22) {
      id.push_back(kBase32[(bits >> (count - 5)) & 31]);
      count -= 5;
    }
  }
  return id;
}

std::string RemapUid(std::string_view secret, std::string_view project, std::string_view uid) {
  const auto mac = Hmac(secret, project, uid);
  return Uid225FromDigest(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

}  // namespace procnode
