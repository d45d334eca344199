// Process-wide logging: libraries call Log(); the host (the Orthanc plugin, or the CLI) installs
// the sink once at start-up. Thread-safe. Never log patient identity: log Orthanc IDs, job ids,
// or HashForLog() of a UID.
#pragma once

#include <functional>
#include <string_view>

namespace procnode {

enum class LogLevel { kInfo, kWarning, kError };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// Replaces the sink; nullptr restores the default (stderr).
void SetLogSink(LogSink sink);
void Log(LogLevel level, std::string_view message);

}  // namespace procnode
