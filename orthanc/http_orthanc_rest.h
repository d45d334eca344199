// The OrthancRest port over HTTP (libcurl), for standalone workers: Orthanc's REST API at a base
// URL, with HTTP Basic credentials when given. The password is kept in memory only: never logged,
// never in an error message. Connect timeout 10 s; a request may take up to `timeout_seconds`
// (instances of a large study are fetched one by one, each well under it). 404 is
// Error(kNotFound); any other failure (refused, timed out, 5xx, 401/403) is Error(kUnavailable)
// naming the method and URI. Thread-safe (one curl handle per call).
#pragma once

#include <string>

#include "orthanc/orthanc_rest.h"

namespace procnode {

class HttpOrthancRest : public OrthancRest {
 public:
  HttpOrthancRest(std::string base_url, std::string user, std::string password, long timeout_seconds = 300);
  std::string Get(const std::string& uri) override;
  std::string Post(const std::string& uri, const std::string& body) override;
  const std::string& base_url() const { return base_url_; }

 private:
  std::string Request(const char* method, const std::string& uri, const std::string* body);
  std::string base_url_, user_, password_;
  long timeout_seconds_;
};

}  // namespace procnode
