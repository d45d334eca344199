// libFuzzer target: an external tool's manifest (tool.json).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "processors/external/tool_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto manifest = procnode::ParseToolManifest(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)procnode::ToolManifestJson(manifest);
  } catch (const procnode::Error&) {
  }
  return 0;
}
