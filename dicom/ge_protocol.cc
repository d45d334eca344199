#include "dicom/ge_protocol.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

std::optional<GeSoftwareVersion> ParseGeSoftwareVersion(std::string_view text) {
  // The release follows "SIGNA_LX1." (30 and later), "MR Software release:" (27), or the last
  // backslash (28, 29).
  std::size_t start = 0;
  if (const auto at = text.find("SIGNA_LX1"); at != std::string_view::npos) {
    start = at + 10;
  } else if (const auto at = text.find("MR Software release"); at != std::string_view::npos) {
    start = at + 20;
  } else if (const auto at = text.rfind('\\'); at != std::string_view::npos) {
    start = at + 1;
  }
  if (start >= text.size()) return std::nullopt;
  const std::string release(text.substr(start, 11));  // "RX27.0_R02_" or "MR29.1_EA_2"
  char prefix[3] = {}, kind[3] = {};
  int major = 0, minor = 0, number = 0;
  const int fields = std::sscanf(release.c_str(), "%2c%d.%d_%2c%d", prefix, &major, &minor, kind, &number);
  if (fields < 3 || major <= 0 || minor < 0 || minor > 9) return std::nullopt;
  // "R02" is read as kind "R0" and number 2; "EA" (early access) counts as release 0.
  if (fields < 5 || (kind[0] == 'E' && kind[1] == 'A')) number = 0;
  GeSoftwareVersion out;
  out.version = major + 0.1 * minor;
  out.r27r3_or_later = out.version >= 27.1 - 1e-9 || (major == 27 && number >= 3);
  return out;
}

std::vector<double> GeSliceTimes(std::size_t slices, int multiband, double tr_ms, double group_delay_ms, bool interleaved,
                                 const GeSoftwareVersion& software) {
  multiband = std::max(multiband, 1);
  if (slices == 0 || !(tr_ms > group_delay_ms) || !std::isfinite(tr_ms)) return {};
  if (multiband > 1 && software.version < 26.0) return {};  // early HyperBand: unknown
  std::size_t excitations = (slices + static_cast<std::size_t>(multiband) - 1) / static_cast<std::size_t>(multiband);
  if (multiband > 1 && !software.r27r3_or_later && excitations % 2 == 0) ++excitations;
  const double step = (tr_ms - group_delay_ms) / static_cast<double>(excitations);
  std::vector<double> by_excitation(excitations);
  const std::size_t odd_start = (excitations - 1) / 2;  // where the odd-numbered excitations begin
  for (std::size_t i = 0; i < excitations; ++i) {
    const std::size_t slot = !interleaved ? i : i % 2 == 0 ? i / 2 : odd_start + (i + 1) / 2;
    by_excitation[i] = static_cast<double>(slot) * step;
  }
  if (multiband > 1 && software.r27r3_or_later && interleaved && excitations > 2 && excitations % 2 == 0) {
    std::swap(by_excitation[excitations - 1], by_excitation[excitations - 3]);
  }
  std::vector<double> times(slices);
  for (std::size_t i = 0; i < slices; ++i) times[i] = by_excitation[i % excitations];
  return times;
}

}  // namespace procnode
