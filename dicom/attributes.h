// DICOM attributes for routing: keyword lookup in DCMTK's data dictionary, and the top-level
// attribute values of a dataset as text (sequences, binary values and pixel data left out).
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

class DcmDataset;

namespace procnode {

// "Modality" -> 0x00080060; nullopt for a keyword the dictionary does not know.
std::optional<uint32_t> DicomKeywordToTag(const std::string& keyword);

// Top-level values by tag (group << 16 | element), multiple values joined by '\'.
std::map<uint32_t, std::string> DatasetAttributes(DcmDataset& ds);

}  // namespace procnode
