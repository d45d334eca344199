#include "core/error.h"

namespace procnode {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput: return "invalid-input";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kProcessorFailed: return "processor-failed";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kTooLarge: return "too-large";
  }
  return "internal";
}

}  // namespace procnode
