// The port through which procnode reaches an Orthanc: its REST API, by URI, as Orthanc's own
// documentation names it (GET /studies/{id}/series, POST /instances, ...). Two implementations:
// the plugin SDK's (plugin/, in-process, no HTTP) and, for standalone workers, an HTTP client;
// tests use an in-memory fake. Failures are procnode::Error: kNotFound for an unknown resource,
// kUnavailable for anything else (Orthanc down, refused, timed out), with Orthanc's own text.
// Implementations are thread-safe.
#pragma once

#include <string>

namespace procnode {

class OrthancRest {
 public:
  virtual ~OrthancRest() = default;
  virtual std::string Get(const std::string& uri) = 0;
  virtual std::string Post(const std::string& uri, const std::string& body) = 0;
};

}  // namespace procnode
