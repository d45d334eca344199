#include "core/log.h"

#include <iostream>
#include <mutex>

namespace procnode {
namespace {

void StderrSink(LogLevel level, std::string_view message) {
  static constexpr std::string_view kNames[] = {"I", "W", "E"};
  std::cerr << "procnode " << kNames[static_cast<int>(level)] << ": " << message << "\n";
}

std::mutex g_mutex;
LogSink g_sink = StderrSink;

}  // namespace

void SetLogSink(LogSink sink) {
  std::lock_guard lock(g_mutex);
  g_sink = sink ? std::move(sink) : LogSink(StderrSink);
}

void Log(LogLevel level, std::string_view message) {
  std::lock_guard lock(g_mutex);
  g_sink(level, message);
}

}  // namespace procnode
