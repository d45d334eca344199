// procnode's Orthanc plugin entry points (SDK 1.10.1) and REST routes.
//
// Every callback handed to Orthanc goes through Protect(), which turns exceptions into an HTTP
// error answer (REST) or an Orthanc error code, so nothing thrown ever reaches Orthanc.
#include <orthanc/OrthancCPlugin.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "plugin/node.h"
#include "plugin/orthanc_api.h"

namespace procnode {
namespace {

std::unique_ptr<Node> g_node;

void Answer(OrthancPluginRestOutput* output, const nlohmann::json& body) {
  const std::string text = body.dump(2);
  OrthancPluginAnswerBuffer(orthanc::Context(), output, text.data(), static_cast<uint32_t>(text.size()),
                            "application/json");
}

void AnswerError(OrthancPluginRestOutput* output, uint16_t status, const std::string& message) {
  const std::string text = nlohmann::json{{"error", message}, {"status", status}}.dump(2);
  OrthancPluginSendHttpStatus(orthanc::Context(), output, status, text.data(), static_cast<uint32_t>(text.size()));
}

uint16_t HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kUnsupported: return 422;
    case ErrorCode::kUnavailable: return 503;
    default: return 500;
  }
}

std::optional<std::string> GetArgument(const OrthancPluginHttpRequest* request, const std::string& key) {
  for (uint32_t i = 0; i < request->getCount; ++i) {
    if (key == request->getKeys[i]) return std::string(request->getValues[i]);
  }
  return std::nullopt;
}

using Handler = void (*)(OrthancPluginRestOutput*, const OrthancPluginHttpRequest*);

// The trampoline: GET only, exceptions to JSON error answers.
template <Handler handler>
OrthancPluginErrorCode Protect(OrthancPluginRestOutput* output, const char*, const OrthancPluginHttpRequest* request) {
  try {
    if (request->method != OrthancPluginHttpMethod_Get) {
      OrthancPluginSendMethodNotAllowed(orthanc::Context(), output, "GET");
      return OrthancPluginErrorCode_Success;
    }
    if (!g_node) {
      AnswerError(output, 503, "procnode is not running");
      return OrthancPluginErrorCode_Success;
    }
    handler(output, request);
  } catch (const Error& e) {
    AnswerError(output, HttpStatusFor(e.code()), e.what());
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("REST handler failed: ") + e.what());
    AnswerError(output, 500, std::string("internal error: ") + e.what());
  }
  return OrthancPluginErrorCode_Success;
}

void GetStatus(OrthancPluginRestOutput* output, const OrthancPluginHttpRequest*) { Answer(output, g_node->Status()); }

void GetJobs(OrthancPluginRestOutput* output, const OrthancPluginHttpRequest* request) {
  const auto state = GetArgument(request, "state");
  if (state && !IsJobState(*state)) {
    throw Error(ErrorCode::kInvalidInput, "state '" + *state + "': expected queued, running, done, failed or cancelled");
  }
  int limit = 100;
  if (const auto text = GetArgument(request, "limit")) {
    try {
      limit = std::stoi(*text);
    } catch (const std::exception&) {
      limit = -1;
    }
    if (limit < 1 || limit > 10000) throw Error(ErrorCode::kInvalidInput, "limit '" + *text + "': expected 1 to 10000");
  }
  Answer(output, g_node->Jobs(state, limit));
}

void GetJob(OrthancPluginRestOutput* output, const OrthancPluginHttpRequest* request) {
  const std::string id_text = request->groups[0];
  int64_t id = 0;
  try {
    id = std::stoll(id_text);
  } catch (const std::exception&) {
    throw Error(ErrorCode::kInvalidInput, "job id '" + id_text + "' is not a number");
  }
  const auto job = g_node->JobDetail(id);
  if (!job) throw Error(ErrorCode::kNotFound, "job " + id_text + " does not exist");
  Answer(output, *job);
}

// GET /procnode/series/{id}/nifti: the series as NIfTI-1, gzip-compressed (dcm2niix conventions).
void GetSeriesNifti(OrthancPluginRestOutput* output, const OrthancPluginHttpRequest* request) {
  const std::string bytes = g_node->SeriesNifti(request->groups[0]);
  OrthancPluginAnswerBuffer(orthanc::Context(), output, bytes.data(), static_cast<uint32_t>(bytes.size()),
                            "application/gzip");
}

OrthancPluginErrorCode OnChange(OrthancPluginChangeType change, OrthancPluginResourceType, const char* resource_id) {
  try {
    switch (change) {
      case OrthancPluginChangeType_OrthancStarted:
        if (g_node) g_node->StartWork();
        break;
      case OrthancPluginChangeType_OrthancStopped:
        if (g_node) g_node->StopWork();
        break;
      case OrthancPluginChangeType_StableStudy:
        if (g_node) g_node->OnStableStudy(resource_id);  // enqueue only: the work happens elsewhere
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("change callback failed: ") + e.what());
  }
  return OrthancPluginErrorCode_Success;
}

}  // namespace
}  // namespace procnode

extern "C" {

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  using namespace procnode;
  orthanc::SetContext(context);
  if (OrthancPluginCheckVersion(context) == 0) {
    OrthancPluginLogError(context, "procnode: this Orthanc is older than the plugin SDK it was built with (1.10.1)");
    return -1;
  }
  orthanc::InstallLogSink(context);
  OrthancPluginSetDescription(context, "procnode: DICOM-native processing node (routing, anonymization, processors, results)");
  try {
    NodeConfig config = ParseNodeConfig(orthanc::Configuration(), ProcessEnv);
    for (const auto& warning : config.warnings) Log(LogLevel::kWarning, warning);
    g_node = std::make_unique<Node>(std::move(config));
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("cannot start: ") + e.what());
    orthanc::InstallLogSink(nullptr);
    return -1;
  }
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/status", Protect<GetStatus>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs", Protect<GetJobs>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs/([^/]+)", Protect<GetJob>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/series/([^/]+)/nifti", Protect<GetSeriesNifti>);
  OrthancPluginRegisterOnChangeCallback(context, OnChange);
  Log(LogLevel::kInfo, std::string("version ") + kVersion + " initialised");
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize() {
  using namespace procnode;
  try {
    if (g_node) g_node->StopWork();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("stopping: ") + e.what());
  }
  g_node.reset();
  orthanc::InstallLogSink(nullptr);
  orthanc::SetContext(nullptr);
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() { return "procnode"; }

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() { return procnode::kVersion; }

}  // extern "C"
