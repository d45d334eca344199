// DICOM attributes for routing: keyword lookup in DCMTK's data dictionary, and the top-level
// attribute values of a dataset as text (sequences, binary values and pixel data left out).
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

class DcmDataset;

namespace procnode {

// "Modality" -> 0x00080060; nullopt for a keyword the dictionary does not know.
std::optional<uint32_t> DicomKeywordToTag(const std::string& keyword);

// Every public keyword of the loaded data dictionary with its tag and VR, sorted by keyword
// (retired and ACR-NEMA names and private entries left out): the completion list of the rule editor.
struct DicomKeyword {
  std::string keyword;
  uint32_t tag = 0;
  std::string vr;
};
std::vector<DicomKeyword> DicomKeywords();

// Top-level values by tag (group << 16 | element), multiple values joined by '\'.
std::map<uint32_t, std::string> DatasetAttributes(DcmDataset& ds);

}  // namespace procnode
