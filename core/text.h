// Small text helpers shared across modules. Pure.
#pragma once

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

namespace procnode {

// `text` cut at every `separator` (std::getline's reading: no piece after a final separator, none
// at all for an empty text).
inline std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

// ASCII upper case (bytes above 127 unchanged).
inline std::string UpperCase(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace procnode
