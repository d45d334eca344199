// The one exception type of procnode. Every failure that crosses a module boundary is an Error
// with a code that says what the caller can do about it (fix the input, retry later, give up).
// Messages name the object and the reason ("instance 3f2a...: PixelData holds 10 bytes, expected
// 524288"), never patient identity.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace procnode {

enum class ErrorCode {
  kInvalidInput,     // bad DICOM, bad configuration, bad request: retrying will not help
  kNotFound,         // the named object does not exist
  kUnsupported,      // valid input that this version cannot handle (transfer syntax, layout)
  kUnavailable,      // a service is down or busy (database, Orthanc, GPU): retryable
  kProcessorFailed,  // a processor ran and failed on this input
  kCancelled,        // stopped on request (shutdown, cancel, lost lease): not a failure of the job
  kInternal,         // a bug
  kForbidden,        // the caller may not do this (identity not verified, not in the role)
  kTooLarge,         // a request or object past a documented size limit
};

std::string_view ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  ErrorCode code() const { return code_; }
  // True where a later attempt may succeed with the same input.
  bool retryable() const { return code_ == ErrorCode::kUnavailable || code_ == ErrorCode::kInternal; }

 private:
  ErrorCode code_;
};

}  // namespace procnode
