#include "dicom/ge_protocol.h"

#include <zlib.h>

#include <sstream>
#include <vector>

namespace procnode {

std::optional<GeProtocol> ParseGeProtocol(std::string_view bytes) {
  constexpr std::size_t kMaxText = 1 << 20;
  if (bytes.size() < 6) return std::nullopt;
  const std::string_view compressed = bytes.substr(4);
  if (static_cast<unsigned char>(compressed[0]) != 0x1f || static_cast<unsigned char>(compressed[1]) != 0x8b) return std::nullopt;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  std::string text;
  std::vector<char> chunk(64 << 10);
  int status = Z_OK;
  while (status == Z_OK && text.size() <= kMaxText) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    status = inflate(&z, Z_NO_FLUSH);
    text.append(chunk.data(), chunk.size() - z.avail_out);
    if (status == Z_BUF_ERROR && z.avail_out != 0) break;
  }
  inflateEnd(&z);
  if (status != Z_STREAM_END || text.size() > kMaxText) return std::nullopt;
  GeProtocol protocol;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0) continue;
    std::string value = line.substr(space + 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    protocol.emplace(line.substr(0, space), value);
  }
  if (protocol.empty()) return std::nullopt;
  return protocol;
}

}  // namespace procnode
