// GE's protocol data block (0025,101B): a 4-byte length, then gzip-compressed text of lines
// `KEY "value"` (SLICEORDER, DELACQ, NOSLC, TR, ...), which is where GE keeps the slice order that
// dcm2niix turns into SliceTiming for EPI. ParseGeProtocol() bounds the inflated size and returns
// nullopt for a block that is not this (the conversion then says nothing of slice timing). Pure;
// thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace procnode {

using GeProtocol = std::map<std::string, std::string>;

std::optional<GeProtocol> ParseGeProtocol(std::string_view bytes);

}  // namespace procnode
