// One number through a printf format ("%.1f"), for reports and labels. Pure.
#pragma once

#include <cstdio>
#include <string>

namespace procnode {

inline std::string FormatNumber(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace procnode
