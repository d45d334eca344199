#include "core/log.h"

#include <iostream>
#include <mutex>

namespace procnode {
namespace {

std::mutex& SinkMutex() {
  static std::mutex mutex;
  return mutex;
}

LogSink& Sink() {
  static LogSink sink = [](LogLevel level, std::string_view message) {
    static constexpr std::string_view kNames[] = {"I", "W", "E"};
    std::cerr << "procnode " << kNames[static_cast<int>(level)] << ": " << message << "\n";
  };
  return sink;
}

}  // namespace

void SetLogSink(LogSink sink) {
  std::lock_guard lock(SinkMutex());
  Sink() = std::move(sink);
}

void Log(LogLevel level, std::string_view message) {
  std::lock_guard lock(SinkMutex());
  Sink()(level, message);
}

}  // namespace procnode
