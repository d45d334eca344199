// One number through a printf format ("%.1f"), for reports and labels; a CSV field. Pure.
#pragma once

#include <cstdio>
#include <string>

namespace procnode {

inline std::string FormatNumber(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// A CSV field (RFC 4180): as it is, or quoted (quotes doubled) where it holds a comma, a quote or a
// line break.
inline std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace procnode
