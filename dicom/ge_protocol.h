// GE's protocol data block (0025,101B): a 4-byte length, then gzip-compressed text of lines
// `KEY "value"` (SLICEORDER, MBACCEL, DELACQNOAV, IOPT, ...), which is where GE keeps the slice
// order that dcm2niix turns into SliceTiming for EPI. ParseGeProtocol() bounds the inflated size
// and returns nullopt for a block that is not this (the conversion then says nothing of slice
// timing). GeSliceTimes() is dcm2niix's model of GE slice times from it (GE writes no times); the
// software version decides how HyperBand (multiband) excitations are counted. Pure; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procnode {

using GeProtocol = std::map<std::string, std::string>;

std::optional<GeProtocol> ParseGeProtocol(std::string_view bytes);

// SoftwareVersions (0018,1020) as GE writes it ("27\LX\MR Software release:RX27.0_R02_1831.a",
// "28\LX\MR29.1_EA_2039.g", "30\LX\SIGNA_LX1.MR30.0_R01_2236.d"): major.minor (27.0, 29.1, 30.0)
// and whether the release is 27.0 R03 or later, where HyperBand slice order changed. nullopt when
// the text is not of that form.
struct GeSoftwareVersion {
  double version = 0;
  bool r27r3_or_later = false;
};
std::optional<GeSoftwareVersion> ParseGeSoftwareVersion(std::string_view text);

// The acquisition time (ms from the first excitation) of each of `slices` slices in acquisition
// (prescription) order: TR less the group delay spread over the excitations, sequential or
// interleaved (the even-numbered excitations first); with HyperBand factor `multiband` the slices
// k, k + excitations, ... share excitation k, and before 27.0 R03 an even excitation count gains
// one (GE's pattern), from R03 on an interleaved even count swaps its last two odd excitations.
// Empty where GE's timing is unknown (HyperBand before version 26, no slices, a delay not below TR).
std::vector<double> GeSliceTimes(std::size_t slices, int multiband, double tr_ms, double group_delay_ms, bool interleaved,
                                 const GeSoftwareVersion& software);

}  // namespace procnode
