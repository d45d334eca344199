// Bounds on untrusted JSON text, checked before it is parsed: nlohmann's dump() and our own
// recursive readers recurse once per nesting level, and Orthanc's HTTP threads have small stacks,
// so a request nested a thousand levels deep must be refused before anything walks it. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace procnode {

// The deepest nesting any procnode request or rule set may have (arrays and objects together).
inline constexpr int kMaxJsonDepth = 64;

// The nesting depth of `text` read as JSON ([ and { outside strings, escapes honoured), stopping
// as soon as it exceeds `limit` (then limit + 1 is returned). Does not validate the JSON.
int JsonNestingDepth(std::string_view text, int limit = kMaxJsonDepth);

// The byte offset of the first sequence in `text` that is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF included), or nullopt when it is all valid.
std::optional<std::size_t> InvalidUtf8At(std::string_view text);

// `text` with every invalid UTF-8 sequence replaced by U+FFFD: safe to put into a JSON answer
// or a log line whatever bytes a request carried.
std::string ValidUtf8(std::string_view text);

}  // namespace procnode
