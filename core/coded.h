// Coded concepts (DICOM code value, coding scheme designator, code meaning) and what a processor
// says about a segment it produced: how to label it (SEG) and what was measured in it (SR TID 1500).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace procnode {

struct Code {
  std::string value, scheme, meaning;
};

// procnode's local coding scheme (PS3.16 8.2: designators beginning with "99"), for concepts no
// standard scheme names (an external tool's own measurements); the SR identifies it.
inline constexpr const char* kPrivateCodingScheme = "99PROCNODE";

struct CodedMeasurement {
  Code concept_name;
  double value = 0;
  Code unit;                       // UCUM
  std::optional<Code> derivation;  // e.g. (373098007, SCT, "Mean")
};

// One segment of a processor's label volume.
struct ResultSegment {
  std::string label;                  // "Right lung"
  Code category, type;                // CID 7150 / CID 7151
  std::vector<int> label_values;      // label volume values that belong to it
  std::array<int, 3> rgb{255, 0, 0};  // display colour
  Code finding;                       // SR finding
  std::optional<Code> finding_site;
  std::vector<CodedMeasurement> measurements;
};

}  // namespace procnode
