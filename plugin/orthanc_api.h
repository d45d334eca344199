// Thin, owning wrappers around the Orthanc plugin C API (SDK 1.10.1). Every buffer and string the
// SDK hands out is freed by an RAII owner; failures become procnode::Error: an unknown resource is
// kNotFound, anything else kUnavailable, with Orthanc's own description of the error.
// Thread-safe once SetContext() ran (Orthanc allows its API from any thread after start).
#pragma once

#include <orthanc/OrthancCPlugin.h>

#include <string>

#include "orthanc/orthanc_rest.h"

namespace procnode::orthanc {

void SetContext(OrthancPluginContext* context);
OrthancPluginContext* Context();

std::string RestGet(const std::string& uri);
std::string RestPost(const std::string& uri, const std::string& body);
// Orthanc's whole configuration, as JSON text.
std::string Configuration();
// Routes procnode's Log() into Orthanc's log (and back to stderr with nullptr).
void InstallLogSink(OrthancPluginContext* context);

// The OrthancRest port on the plugin SDK: Orthanc's REST API in process, no HTTP.
class SdkOrthancRest : public OrthancRest {
 public:
  std::string Get(const std::string& uri) override { return RestGet(uri); }
  std::string Post(const std::string& uri, const std::string& body) override { return RestPost(uri, body); }
};

}  // namespace procnode::orthanc
