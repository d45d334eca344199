// Siemens CSA headers ("SV10" format) in (0029,1010) / (0029,1020): named elements, each a list of
// text values. Used for mosaic geometry (NumberOfImagesInMosaic, SliceNormalVector) and
// acquisition details (MosaicRefAcqTimes, PhaseEncodingDirectionPositive).
//
// ParseSiemensCsa() checks every length against the buffer; a truncated or corrupt header is
// Error(kInvalidInput) naming `name`. Pure; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace procnode {

using SiemensCsa = std::map<std::string, std::vector<std::string>>;

SiemensCsa ParseSiemensCsa(std::string_view bytes, const std::string& name);

// The element's numeric values (empty elements skipped); nullopt when absent or not numeric.
std::optional<std::vector<double>> CsaNumbers(const SiemensCsa& csa, const std::string& element);

}  // namespace procnode
