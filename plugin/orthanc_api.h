// Thin, owning wrappers around the Orthanc plugin C API (SDK 1.10.1). Every buffer and string the
// SDK hands out is freed by an RAII owner; failures become procnode::Error: an unknown resource is
// kNotFound, anything else kUnavailable, with Orthanc's own description of the error.
// Thread-safe once SetContext() ran (Orthanc allows its API from any thread after start).
#pragma once

#include <orthanc/OrthancCPlugin.h>

#include <string>

namespace procnode::orthanc {

void SetContext(OrthancPluginContext* context);
OrthancPluginContext* Context();

std::string RestGet(const std::string& uri);
std::string RestPost(const std::string& uri, const std::string& body);
// Orthanc's whole configuration, as JSON text.
std::string Configuration();
// Routes procnode's Log() into Orthanc's log (and back to stderr with nullptr).
void InstallLogSink(OrthancPluginContext* context);

}  // namespace procnode::orthanc
