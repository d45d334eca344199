// The PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes) as data:
// schemas/anonymizer/ps3.15-e1-1.<edition>.tsv, compiled in. ProfileTable() parses it once.
//
// Actions: D (dummy), Z (zero length or dummy), X (remove), K (keep), C (clean), U (remap UID),
// and the compound ones (X/Z, X/D, Z/D, X/Z/D, X/Z/U*), kept as written; the de-identifier
// resolves them. Options override the Basic Profile action where the table says so. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace procnode {

extern const char* const kProfileTableName;  // file name, with the edition
extern const char* const kProfileTableText;

enum class ProfileOption {
  kRetainSafePrivate,
  kRetainUids,
  kRetainDeviceIdentity,
  kRetainInstitutionIdentity,
  kRetainPatientCharacteristics,
  kRetainLongitudinalFullDates,
  kRetainLongitudinalModifiedDates,
  kCleanDescriptors,
  kCleanStructuredContent,
  kCleanGraphics,
};

struct ProfileEntry {
  std::string name;
  std::string basic;                                // e.g. "X/Z/D"
  std::map<ProfileOption, std::string> options;     // option -> action ("K", "C", "X")
};

struct ProfileTableData {
  std::map<uint32_t, ProfileEntry> exact;           // (group << 16) | element
  ProfileEntry curves;                              // (50XX,XXXX)
  std::map<uint16_t, ProfileEntry> overlays;        // (60XX,eeee) by element
  ProfileEntry private_attributes;                  // odd groups
  std::string edition;                              // from the file name
};

// Error(kInternal) naming the line when the compiled-in table is malformed.
const ProfileTableData& ProfileTable();

// The entry for a tag (exact, then curve/overlay/private wildcards); nullopt when the table does
// not list it (the attribute is kept).
const ProfileEntry* FindProfileEntry(uint16_t group, uint16_t element);

}  // namespace procnode
