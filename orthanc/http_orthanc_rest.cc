#include "orthanc/http_orthanc_rest.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "core/error.h"

namespace procnode {
namespace {

std::size_t Append(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

HttpOrthancRest::HttpOrthancRest(std::string base_url, std::string user, std::string password, long timeout_seconds)
    : base_url_(std::move(base_url)), user_(std::move(user)), password_(std::move(password)),
      timeout_seconds_(timeout_seconds) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  if (base_url_.rfind("http://", 0) != 0 && base_url_.rfind("https://", 0) != 0) {
    throw Error(ErrorCode::kInvalidInput, "Orthanc URL \"" + base_url_ + "\": expected http://HOST:PORT or https://...");
  }
  GlobalInit();
}

std::string HttpOrthancRest::Get(const std::string& uri) { return Request("GET", uri, nullptr); }

std::string HttpOrthancRest::Post(const std::string& uri, const std::string& body) { return Request("POST", uri, &body); }

std::string HttpOrthancRest::Request(const char* method, const std::string& uri, const std::string* body) {
  const std::string what = std::string(method) + " " + base_url_ + uri;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error(ErrorCode::kInternal, what + ": libcurl could not start");
  std::string answer;
  const std::string url = base_url_ + uri;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, timeout_seconds_);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer);
  if (!user_.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, user_.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, password_.c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, &curl_slist_free_all);
  if (body != nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    headers.reset(curl_slist_append(nullptr, "Expect:"));  // no 100-continue round trip
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  const CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) throw Error(ErrorCode::kUnavailable, what + ": " + curl_easy_strerror(code));
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) throw Error(ErrorCode::kNotFound, what + ": unknown resource (404)");
  if (status < 200 || status >= 300) {
    throw Error(ErrorCode::kUnavailable, what + ": HTTP " + std::to_string(status) +
                                             (status == 401 || status == 403 ? " (check the worker's Orthanc credentials)" : ""));
  }
  return answer;
}

}  // namespace procnode
