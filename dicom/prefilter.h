// Cuts the top-level private groups that a reader does not need out of a DICOM Part 10 file's
// bytes, before DCMTK parses them; reads a few top-level values without parsing at all.
//
// DCMTK builds an object for every element and looks each one up in its data dictionary (private
// tags by a linear search), so vendor groups dominate the parse of small files: a GE EPI slice
// holds 342 elements, 136 of them in groups 0009, 0021-0027 and 0043 that conversion never reads.
// Everything else is copied byte for byte: the preamble and meta header, public elements, the kept
// private groups (with their creators), and whatever sequences hold (nested elements are not
// filtered). Pure function of its input; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace procnode {

// The file without the private groups (odd group numbers) absent from `keep_groups`, or nullopt
// (parse the original) when nothing would be cut or the bytes are not the plain case this walker
// understands: no "DICM" preamble, a big-endian or deflated dataset, a length running past the
// end, an explicit VR that is not two capital letters, an unterminated or too deeply nested
// sequence. It never judges a file broken: DCMTK does that on the original bytes.
// `keep_elements` (group << 16 | element, sorted), when given, narrow the kept groups to those
// elements and the groups' private creators (gggg,0010-00FF): the rest of a kept group is cut too.
std::optional<std::string> WithoutPrivateGroups(std::string_view file, std::span<const uint16_t> keep_groups,
                                                std::span<const uint32_t> keep_elements = {});

// The values of some top-level attributes (tag = group << 16 | element), as text without leading
// and trailing padding, read straight from the bytes (the folder scan's series grouping, without a
// DCMTK parse); absent attributes are absent from the map. nullopt where WithoutPrivateGroups would
// leave the file alone, when an element before the last wanted tag cannot be walked, or when a
// wanted value has a VR other than a text one (UN, binary: DCMTK's reading differs).
std::optional<std::map<uint32_t, std::string>> TopLevelValues(std::string_view file, std::span<const uint32_t> tags);

// Where an element or item of a plain little-endian file (as above), before the top-level tag
// `stop_tag`, claims a defined length larger than the bytes the file has left: "element
// (gggg,eeee) at byte N claims L bytes, M are left". Empty when every length fits, or when the
// walker cannot judge (another layout, another fault: DCMTK judges those). Such a file cannot be
// whole, and DCMTK would allocate the claimed length (up to 4 GiB) before finding that out.
std::string FirstLengthOverrun(std::string_view file, uint32_t stop_tag = 0xFFFFFFFF);

// Where a plain little-endian file's top-level PixelData (7FE0,0010) is, found in `head` (the
// file's first bytes): its element's first byte, its value's, and the value's length. Only for
// native pixels (Implicit or Explicit VR Little Endian, a defined length, OB or OW): nullopt for
// anything else, or when `head` ends before the element (a reader then parses the file whole).
struct PixelDataSpan {
  std::size_t element = 0, offset = 0;
  uint32_t length = 0;
};
std::optional<PixelDataSpan> LocateNativePixelData(std::string_view head);

}  // namespace procnode
