#include "core/digest.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace procnode {
namespace {

std::array<unsigned char, 32> Sha256(std::string_view bytes) {
  std::array<unsigned char, 32> out{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size()) {
    throw Error(ErrorCode::kInternal, "OpenSSL SHA-256 failed");
  }
  return out;
}

// Decimal text of a 128-bit unsigned integer given as 16 big-endian bytes.
std::string Decimal128(const unsigned char* bytes) {
  std::array<uint32_t, 4> words{};  // big-endian 32-bit limbs
  for (int i = 0; i < 16; ++i) words[i / 4] = (words[i / 4] << 8) | bytes[i];
  std::string digits;
  auto is_zero = [&] { return words[0] == 0 && words[1] == 0 && words[2] == 0 && words[3] == 0; };
  while (!is_zero()) {
    uint64_t remainder = 0;
    for (auto& word : words) {
      const uint64_t current = (remainder << 32) | word;
      word = static_cast<uint32_t>(current / 10);
      remainder = current % 10;
    }
    digits.insert(digits.begin(), static_cast<char>('0' + remainder));
  }
  return digits.empty() ? "0" : digits;
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto digest = Sha256(bytes);
  std::string hex;
  hex.reserve(64);
  for (unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  return hex;
}

std::string DerivedUid(std::string_view name_space, std::string_view name) {
  std::string input(name_space);
  input.push_back('\0');
  input.append(name);
  const auto digest = Sha256(input);
  return Uid225FromDigest(std::string_view(reinterpret_cast<const char*>(digest.data()), 16));
}

std::string Uid225FromDigest(std::string_view digest) {
  if (digest.size() < 16) throw Error(ErrorCode::kInternal, "Uid225FromDigest needs 16 bytes");
  // At most 5 + 39 = 44 characters, well inside the 64 allowed.
  return "2.25." + Decimal128(reinterpret_cast<const unsigned char*>(digest.data()));
}

std::string HashForLog(std::string_view identifier) {
  return Sha256Hex(identifier).substr(0, 12);
}

}  // namespace procnode
