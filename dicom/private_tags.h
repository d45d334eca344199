// The vendor private attributes procnode reads or keeps, in one table: what the readers address,
// what a folder read for conversion keeps of the vendor groups (everything else is cut before
// DCMTK parses it), and what the anonymizer's Retain Safe Private option keeps all come from here,
// so they cannot drift apart. A new private read needs its entry here, or the conversion's folder
// scan cuts the element and the read finds nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace procnode {

struct PrivateAttribute {
  const char* creator;  // the private creator (gggg,00xx) value of its block
  uint16_t group;
  uint16_t element;     // as the readers address it: the block byte where the vendors put it, then the element byte
  bool safe;            // a technical value with no identity in it: kept by Retain Safe Private (PS3.15 E.3.10)
  const char* purpose;
};

inline constexpr PrivateAttribute kPrivateAttributes[] = {
    // Siemens
    {"SIEMENS MR HEADER", 0x0019, 0x1008, true, "ImagingMode"},
    {"SIEMENS MR HEADER", 0x0019, 0x100A, true, "NumberOfImagesInMosaic"},
    {"SIEMENS MR HEADER", 0x0019, 0x100B, true, "SliceMeasurementDuration"},
    {"SIEMENS MR HEADER", 0x0019, 0x100C, true, "B_value"},
    {"SIEMENS MR HEADER", 0x0019, 0x100D, true, "DiffusionDirectionality"},
    {"SIEMENS MR HEADER", 0x0019, 0x100E, true, "DiffusionGradientDirection"},
    {"SIEMENS MR HEADER", 0x0019, 0x1027, true, "B_matrix"},
    {"SIEMENS MR HEADER", 0x0019, 0x1028, true, "BandwidthPerPixelPhaseEncode"},
    {"SIEMENS MR HEADER", 0x0019, 0x1029, true, "MosaicRefAcqTimes (slice timing)"},
    {"SIEMENS CSA HEADER", 0x0029, 0x1008, true, "CSA image header type"},
    {"SIEMENS CSA HEADER", 0x0029, 0x1009, true, "CSA image header version"},
    {"SIEMENS CSA HEADER", 0x0029, 0x1010, true, "CSA image header (geometry, timing)"},
    // Philips
    {"Philips Imaging DD 001", 0x2001, 0x1003, true, "diffusion b-factor"},
    {"Philips Imaging DD 001", 0x2001, 0x1004, true, "diffusion direction (I: isotropic)"},
    {"Philips MR Imaging DD 001", 0x2005, 0x100E, true, "scale slope"},
    {"Philips MR Imaging DD 001", 0x2005, 0x10B0, true, "diffusion direction RL"},
    {"Philips MR Imaging DD 001", 0x2005, 0x10B1, true, "diffusion direction AP"},
    {"Philips MR Imaging DD 001", 0x2005, 0x10B2, true, "diffusion direction FH"},
    {"Philips MR Imaging DD 005", 0x2005, 0x140F, false, "per-frame private items (precise scaling)"},
    // GE
    {"GEMS_ACQU_01", 0x0019, 0x109C, false, "pulse sequence name (slice order)"},
    {"GEMS_ACQU_01", 0x0019, 0x109E, false, "internal pulse sequence name (slice order)"},
    {"GEMS_ACQU_01", 0x0019, 0x10BB, true, "user data (diffusion direction x)"},
    {"GEMS_ACQU_01", 0x0019, 0x10BC, true, "user data (diffusion direction y)"},
    {"GEMS_ACQU_01", 0x0019, 0x10BD, true, "user data (diffusion direction z)"},
    {"GEMS_ACQU_01", 0x0019, 0x10E0, true, "number of diffusion directions (0: trace)"},
    {"GEMS_SERS_01", 0x0025, 0x101B, false, "protocol data block (slice order)"},
    {"GEMS_PARM_01", 0x0043, 0x102A, false, "user data block (phase-encoding polarity)"},
    {"GEMS_PARM_01", 0x0043, 0x102C, true, "effective echo spacing"},
    {"GEMS_PARM_01", 0x0043, 0x1039, true, "slop_int (b-value)"},
    {"GEMS_PARM_01", 0x0043, 0x107C, false, "fMRI group delay (slice timing)"},
    {"GEMS_PARM_01", 0x0043, 0x1083, true, "ASSET factors (in-plane acceleration)"},
    {"GEMS_PARM_01", 0x0043, 0x10B6, true, "multiband factor"},
    // United Imaging
    {"Image Private Header", 0x0065, 0x1009, true, "effective b-value"},
    {"Image Private Header", 0x0065, 0x100D, true, "parallel imaging (\"F:2S\")"},
    {"Image Private Header", 0x0065, 0x1037, true, "diffusion gradient direction"},
    {"Image Private Header", 0x0065, 0x1050, true, "slices in a grid image"},
    {"Image Private Header", 0x0065, 0x1051, true, "per-slice items of a grid (positions; dates as the profile says)"},
    {"Image Private Header", 0x0065, 0x1058, true, "phase-encoding polarity"},
};

// The groups of the table, and its elements as (group << 16 | element), each sorted: what a folder
// read for conversion keeps of the top-level private data (FolderScanOptions).
inline std::vector<uint16_t> PrivateGroupsRead() {
  std::vector<uint16_t> groups;
  for (const auto& a : kPrivateAttributes) groups.push_back(a.group);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

inline std::vector<uint32_t> PrivateElementsRead() {
  std::vector<uint32_t> elements;
  for (const auto& a : kPrivateAttributes) elements.push_back(static_cast<uint32_t>(a.group) << 16 | a.element);
  std::sort(elements.begin(), elements.end());
  return elements;
}

}  // namespace procnode
