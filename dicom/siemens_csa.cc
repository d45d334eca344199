#include "dicom/siemens_csa.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace procnode {
namespace {

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  uint32_t U32() {
    Need(4);
    uint32_t value;
    std::memcpy(&value, bytes_.data() + at_, 4);
    at_ += 4;
    return value;
  }
  std::string_view Take(std::size_t size) {
    Need(size);
    const auto part = bytes_.substr(at_, size);
    at_ += size;
    return part;
  }
  void Skip(std::size_t size) { Take(size); }

 private:
  void Need(std::size_t size) const {
    if (size > bytes_.size() - at_) {
      throw Error(ErrorCode::kInvalidInput, name_ + ": Siemens CSA header truncated at byte " + std::to_string(at_));
    }
  }
  std::string_view bytes_;
  const std::string& name_;
  std::size_t at_ = 0;
};

std::string Trimmed(std::string_view text) {
  const auto end = text.find('\0');
  std::string value(text.substr(0, end));
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
  while (!value.empty() && value.front() == ' ') value.erase(value.begin());
  return value;
}

}  // namespace

SiemensCsa ParseSiemensCsa(std::string_view bytes, const std::string& name) {
  Reader reader(bytes, name);
  if (bytes.substr(0, 4) != "SV10") {
    throw Error(ErrorCode::kInvalidInput, name + ": Siemens CSA header is not in the SV10 format");
  }
  reader.Skip(8);
  const uint32_t elements = reader.U32();
  reader.Skip(4);
  if (elements > 1000) throw Error(ErrorCode::kInvalidInput, name + ": Siemens CSA header claims " + std::to_string(elements) + " elements");
  SiemensCsa csa;
  for (uint32_t e = 0; e < elements; ++e) {
    const std::string element = Trimmed(reader.Take(64));
    reader.Skip(4 + 4 + 4);  // VM, VR, SyngoDT
    const uint32_t items = reader.U32();
    reader.Skip(4);
    if (items > 10000) throw Error(ErrorCode::kInvalidInput, name + ": Siemens CSA element " + element + " claims " + std::to_string(items) + " items");
    auto& values = csa[element];
    for (uint32_t i = 0; i < items; ++i) {
      reader.Skip(4);
      const uint32_t length = reader.U32();
      reader.Skip(8);
      if (length > bytes.size()) throw Error(ErrorCode::kInvalidInput, name + ": Siemens CSA item longer than the header");
      const std::string value = Trimmed(reader.Take(length));
      reader.Skip((4 - length % 4) % 4);
      if (!value.empty()) values.push_back(value);
    }
  }
  return csa;
}

std::optional<std::vector<double>> CsaNumbers(const SiemensCsa& csa, const std::string& element) {
  const auto it = csa.find(element);
  if (it == csa.end() || it->second.empty()) return std::nullopt;
  std::vector<double> numbers;
  for (const auto& text : it->second) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str()) return std::nullopt;
    numbers.push_back(value);
  }
  return numbers;
}

}  // namespace procnode
