#include "plugin/orthanc_api.h"

#include <atomic>

#include "core/error.h"
#include "core/log.h"

namespace procnode::orthanc {
namespace {

std::atomic<OrthancPluginContext*> g_context{nullptr};

// Owns an OrthancPluginMemoryBuffer filled by the SDK.
class Buffer {
 public:
  Buffer() { buffer_.data = nullptr, buffer_.size = 0; }
  ~Buffer() {
    if (buffer_.data != nullptr) OrthancPluginFreeMemoryBuffer(Context(), &buffer_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  OrthancPluginMemoryBuffer* get() { return &buffer_; }
  std::string str() const {
    return buffer_.data == nullptr ? std::string() : std::string(static_cast<const char*>(buffer_.data), buffer_.size);
  }

 private:
  OrthancPluginMemoryBuffer buffer_;
};

[[noreturn]] void ThrowFor(OrthancPluginErrorCode code, const std::string& what) {
  const char* description = OrthancPluginGetErrorDescription(Context(), code);
  std::string message = what + ": Orthanc error " + std::to_string(static_cast<int>(code)) + " (" +
                        (description ? description : "unknown") + ")";
  if (code == OrthancPluginErrorCode_CannotWriteFile || code == OrthancPluginErrorCode_FileStorageCannotWrite ||
      code == OrthancPluginErrorCode_FullStorage) {
    message += ": Orthanc's storage (StorageDirectory) is full or not writable";
  }
  throw Error(code == OrthancPluginErrorCode_UnknownResource ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
              message);
}

}  // namespace

void SetContext(OrthancPluginContext* context) { g_context = context; }

OrthancPluginContext* Context() {
  OrthancPluginContext* context = g_context.load();
  if (context == nullptr) throw Error(ErrorCode::kUnavailable, "Orthanc is not available (plugin not initialised)");
  return context;
}

std::string RestGet(const std::string& uri) {
  Buffer answer;
  const auto code = OrthancPluginRestApiGet(Context(), answer.get(), uri.c_str());
  if (code != OrthancPluginErrorCode_Success) ThrowFor(code, "GET " + uri);
  return answer.str();
}

std::string RestPost(const std::string& uri, const std::string& body) {
  Buffer answer;
  // Routes of other plugins (the DICOMweb plugin's STOW-RS client) are reached only "after plugins".
  const bool other_plugin = uri.rfind("/dicom-web/", 0) == 0;
  const auto code = other_plugin ? OrthancPluginRestApiPostAfterPlugins(Context(), answer.get(), uri.c_str(), body.data(),
                                                                        static_cast<uint32_t>(body.size()))
                                 : OrthancPluginRestApiPost(Context(), answer.get(), uri.c_str(), body.data(),
                                                            static_cast<uint32_t>(body.size()));
  if (code != OrthancPluginErrorCode_Success) ThrowFor(code, "POST " + uri);
  return answer.str();
}

std::string Configuration() {
  char* text = OrthancPluginGetConfiguration(Context());
  if (text == nullptr) throw Error(ErrorCode::kUnavailable, "Orthanc did not give its configuration");
  std::string json(text);
  OrthancPluginFreeString(Context(), text);
  return json;
}

void InstallLogSink(OrthancPluginContext* context) {
  if (context == nullptr) {
    SetLogSink(nullptr);
    return;
  }
  SetLogSink([context](LogLevel level, std::string_view message) {
    const std::string text = "procnode: " + std::string(message);
    switch (level) {
      case LogLevel::kInfo: OrthancPluginLogInfo(context, text.c_str()); break;
      case LogLevel::kWarning: OrthancPluginLogWarning(context, text.c_str()); break;
      case LogLevel::kError: OrthancPluginLogError(context, text.c_str()); break;
    }
  });
}

}  // namespace procnode::orthanc
