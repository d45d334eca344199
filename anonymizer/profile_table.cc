#include "anonymizer/profile_table.h"

#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/text.h"

namespace procnode {
namespace {

// "DATES" is shorthand for the two longitudinal options (K with full dates, C with modified dates).
void AddOptions(const std::string& text, ProfileEntry& entry, const std::string& where) {
  if (text == "-") return;
  static const std::map<std::string, ProfileOption> kKeys{
      {"SAFEPRIV", ProfileOption::kRetainSafePrivate},
      {"UIDS", ProfileOption::kRetainUids},
      {"DEVICE", ProfileOption::kRetainDeviceIdentity},
      {"INSTITUTION", ProfileOption::kRetainInstitutionIdentity},
      {"PATIENT", ProfileOption::kRetainPatientCharacteristics},
      {"DESCRIPTORS", ProfileOption::kCleanDescriptors},
      {"STRUCTURED", ProfileOption::kCleanStructuredContent},
      {"GRAPHICS", ProfileOption::kCleanGraphics}};
  for (const auto& item : Split(text, ' ')) {
    if (item.empty()) continue;
    if (item == "DATES") {
      entry.options[ProfileOption::kRetainLongitudinalFullDates] = "K";
      entry.options[ProfileOption::kRetainLongitudinalModifiedDates] = "C";
      continue;
    }
    const auto eq = item.find('=');
    const auto key = kKeys.find(item.substr(0, eq));
    if (eq == std::string::npos || key == kKeys.end()) throw Error(ErrorCode::kInternal, where + ": bad option '" + item + "'");
    entry.options[key->second] = item.substr(eq + 1);
  }
}

ProfileTableData Parse() {
  ProfileTableData table;
  const std::string file = kProfileTableName;
  table.edition = file.substr(std::string("ps3.15-e1-1.").size(), file.size() - std::string("ps3.15-e1-1.").size() - 4);
  int line_number = 0;
  for (const auto& line : Split(kProfileTableText, '\n')) {
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = file + " line " + std::to_string(line_number);
    const auto fields = Split(line, '\t');
    if (fields.size() != 4) throw Error(ErrorCode::kInternal, where + ": expected 4 tab-separated fields");
    ProfileEntry entry{fields[3], fields[1], {}};
    AddOptions(fields[2], entry, where);
    const std::string& tag = fields[0];
    if (tag == "(GGGG,EEEE) odd") {
      table.private_attributes = entry;
    } else if (tag == "(50XX,XXXX)") {
      table.curves = entry;
    } else if (tag.size() == 11 && tag.compare(0, 5, "(60XX") == 0) {
      table.overlays[static_cast<uint16_t>(std::strtoul(tag.substr(6, 4).c_str(), nullptr, 16))] = entry;
    } else if (tag.size() == 11 && tag[0] == '(' && tag[5] == ',' && tag[10] == ')') {
      char* end = nullptr;
      const auto group = std::strtoul(tag.substr(1, 4).c_str(), &end, 16);
      const auto element = std::strtoul(tag.substr(6, 4).c_str(), &end, 16);
      table.exact[static_cast<uint32_t>(group << 16 | element)] = entry;
    } else {
      throw Error(ErrorCode::kInternal, where + ": bad tag '" + tag + "'");
    }
  }
  return table;
}

}  // namespace

const ProfileTableData& ProfileTable() {
  static const ProfileTableData table = Parse();
  return table;
}

const ProfileEntry* FindProfileEntry(uint16_t group, uint16_t element) {
  const auto& table = ProfileTable();
  const auto it = table.exact.find(static_cast<uint32_t>(group) << 16 | element);
  if (it != table.exact.end()) return &it->second;
  if (group % 2 == 1) return &table.private_attributes;
  if (group >= 0x5000 && group <= 0x50FF) return &table.curves;
  if (group >= 0x6000 && group <= 0x60FF) {
    const auto overlay = table.overlays.find(element);
    if (overlay != table.overlays.end()) return &overlay->second;
  }
  return nullptr;
}

}  // namespace procnode
