// procnode's Orthanc plugin entry points (SDK 1.10.1) and REST routes.
//
// Every callback handed to Orthanc goes through Protect(), which turns exceptions into an HTTP
// error answer (REST) or an Orthanc error code, so nothing thrown ever reaches Orthanc.
#include <orthanc/OrthancCPlugin.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "core/version.h"
#include "dicom/attributes.h"
#include "jobs/job_queue.h"
#include "jobs/node_config.h"
#include "node/node.h"
#include "plugin/orthanc_api.h"
#include "plugin/web_assets.h"
#include "processors/processor.h"

namespace procnode {
namespace {

orthanc::SdkOrthancRest g_rest;  // outlives g_node
std::unique_ptr<Node> g_node;

// Requests larger than this are refused unread (413): the largest legitimate body, a rule set, is
// a few KB; a 50 MB one would be stored and then served on every GET.
constexpr std::size_t kMaxRequestBytes = 1 << 20;

// JSON text for an answer: never throws on invalid UTF-8 (a request's bytes echoed in a message),
// replaces it with U+FFFD instead.
std::string AnswerText(const nlohmann::json& body) {
  return body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Answer(OrthancPluginRestOutput* output, const nlohmann::json& body) {
  const std::string text = AnswerText(body);
  OrthancPluginAnswerBuffer(orthanc::Context(), output, text.data(), static_cast<uint32_t>(text.size()),
                            "application/json");
}

void AnswerError(OrthancPluginRestOutput* output, uint16_t status, const std::string& message) {
  const std::string text = AnswerText(nlohmann::json{{"error", ValidUtf8(message)}, {"status", status}});
  OrthancPluginSendHttpStatus(orthanc::Context(), output, status, text.data(), static_cast<uint32_t>(text.size()));
}

uint16_t HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput: return 400;
    case ErrorCode::kForbidden: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kCancelled: return 409;
    case ErrorCode::kTooLarge: return 413;
    case ErrorCode::kUnsupported: return 422;
    case ErrorCode::kUnavailable: return 503;
    default: return 500;
  }
}

// The request as handlers see it.
struct Request {
  const OrthancPluginHttpRequest* raw;
  std::string method;  // GET, POST, PUT
  std::string body;
  Caller caller;       // who asks, and whether anyone verified it (Node::Identify)

  // URL groups and query values are checked to be valid UTF-8 before a handler sees them.
  std::string Group(uint32_t i) const { return i < raw->groupsCount ? raw->groups[i] : ""; }
  std::optional<std::string> Header(const std::string& name) const {
    for (uint32_t i = 0; i < raw->headersCount; ++i) {
      std::string key = raw->headersKeys[i];
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
      if (key == name) return std::string(raw->headersValues[i]);
    }
    return std::nullopt;
  }
};

std::string DecodeBase64(const std::string& text) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, value = 0;
  for (char c : text) {
    const auto index = kAlphabet.find(c);
    if (index == std::string::npos) continue;
    value = (value << 6) | static_cast<int>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
    }
  }
  return out;
}

// The user named by an Authorization: Basic header (verified only where Orthanc's authentication
// is on: Node::Identify decides).
std::optional<std::string> BasicUser(const Request& request) {
  const auto auth = request.Header("authorization");
  if (!auth || auth->rfind("Basic ", 0) != 0) return std::nullopt;
  const std::string decoded = DecodeBase64(auth->substr(6));
  const std::string user = decoded.substr(0, decoded.find(':'));
  if (user.empty()) return std::nullopt;
  return user;
}

// Every text of the request a handler may echo or store: the reason when one is not UTF-8.
std::optional<std::string> NotUtf8(const OrthancPluginHttpRequest* raw, const std::string& body) {
  if (const auto at = InvalidUtf8At(body)) return "the request body is not valid UTF-8 (byte " + std::to_string(*at) + ")";
  for (uint32_t i = 0; i < raw->groupsCount; ++i) {
    if (InvalidUtf8At(raw->groups[i])) return "the URL is not valid UTF-8 once decoded";
  }
  for (uint32_t i = 0; i < raw->getCount; ++i) {
    if (InvalidUtf8At(raw->getKeys[i]) || InvalidUtf8At(raw->getValues[i])) return "a query argument is not valid UTF-8";
  }
  for (uint32_t i = 0; i < raw->headersCount; ++i) {
    if (InvalidUtf8At(raw->headersValues[i])) return std::string("header ") + ValidUtf8(raw->headersKeys[i]) + " is not valid UTF-8";
  }
  return std::nullopt;
}

using Handler = void (*)(OrthancPluginRestOutput*, const Request&);

constexpr bool kAdminOnly = true;

void AnswerFailure(OrthancPluginRestOutput* output, const Error& e) {
  // Validation failures carry their JSON (message + errors with pointers) as the message.
  const auto details = nlohmann::json::parse(e.what(), nullptr, false);
  if (e.code() == ErrorCode::kInvalidInput && details.is_object() && details.contains("errors")) {
    nlohmann::json body = details;
    body["status"] = 400;
    body["error"] = details.value("message", "invalid");
    const std::string text = AnswerText(body);
    OrthancPluginSendHttpStatus(orthanc::Context(), output, 400, text.data(), static_cast<uint32_t>(text.size()));
  } else {
    AnswerError(output, HttpStatusFor(e.code()), e.what());
  }
}

// The trampoline: request limits, method check, admin check for writes, exceptions to JSON error
// answers. Nothing thrown, whatever its type, ever leaves it.
// The headers a hospital's security scanner checks, on every procnode answer (errors included):
// the admin page runs only its own script and style (no inline code, no framing), nothing is
// sniffed into another type, and no answer (jobs, identities) is kept by browsers or proxies.
void SecurityHeaders(OrthancPluginRestOutput* output) {
  static const std::pair<const char*, const char*> kHeaders[] = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
  };
  for (const auto& [key, value] : kHeaders) OrthancPluginSetHttpHeader(orthanc::Context(), output, key, value);
}

template <Handler handler, bool admin_only = false>
OrthancPluginErrorCode Protect(OrthancPluginRestOutput* output, const char* url, const OrthancPluginHttpRequest* raw) {
  try {
    SecurityHeaders(output);
    try {
      if (!g_node) {
        AnswerError(output, 503, "procnode is not running");
        return OrthancPluginErrorCode_Success;
      }
      if (raw->bodySize > kMaxRequestBytes) {
        throw Error(ErrorCode::kTooLarge, "the request body has " + std::to_string(raw->bodySize) +
                                              " bytes; procnode accepts at most " + std::to_string(kMaxRequestBytes));
      }
      Request request{raw, raw->method == OrthancPluginHttpMethod_Get    ? "GET"
                           : raw->method == OrthancPluginHttpMethod_Post ? "POST"
                           : raw->method == OrthancPluginHttpMethod_Put  ? "PUT"
                                                                         : "DELETE",
                      raw->body != nullptr ? std::string(static_cast<const char*>(raw->body), raw->bodySize) : "", {}};
      if (const auto problem = NotUtf8(raw, request.body)) throw Error(ErrorCode::kInvalidInput, *problem);
      const std::string& trusted = g_node->TrustedUserHeader();
      request.caller = g_node->Identify(BasicUser(request), trusted.empty() ? std::nullopt : request.Header(trusted));
      if (admin_only && request.method != "GET") {
        if (const auto refusal = g_node->AdministrationRefusal(request.caller)) {
          Log(LogLevel::kWarning, "refused " + request.method + " " + ValidUtf8(raw->groupsCount ? raw->groups[0] : "") +
                                      " for " + request.caller.Describe() + ": " + *refusal);
          g_node->Audit({.who = request.caller.verified ? request.caller.name : "unverified caller",
                         .action = "admin." + request.method, .object = ValidUtf8(url != nullptr ? url : ""),
                         .outcome = "refused", .detail = *refusal});
          AnswerError(output, 403, *refusal);
          return OrthancPluginErrorCode_Success;
        }
      }
      handler(output, request);
    } catch (const Error& e) {
      AnswerFailure(output, e);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, std::string("REST handler failed: ") + ValidUtf8(e.what()));
      AnswerError(output, 500, std::string("internal error: ") + e.what());
    }
  } catch (...) {  // even answering failed: tell Orthanc, never unwind into it
    Log(LogLevel::kError, "REST handler failed, and so did its error answer");
    return OrthancPluginErrorCode_InternalError;
  }
  return OrthancPluginErrorCode_Success;
}

bool Only(OrthancPluginRestOutput* output, const Request& request, const char* allowed) {
  if (std::string(allowed).find(request.method) != std::string::npos) return true;
  OrthancPluginSendMethodNotAllowed(orthanc::Context(), output, allowed);
  return false;
}

// A whole decimal number from lo to hi: "1e3", "12abc", "" and out-of-range values are refused.
int64_t NumberFrom(const std::string& text, const char* what, int64_t lo, int64_t hi) {
  const bool digits = !text.empty() && text.size() <= 19 &&
                      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits) {
    const long long value = std::stoll(text);
    if (value >= lo && value <= hi) return value;
  }
  throw Error(ErrorCode::kInvalidInput, std::string(what) + " '" + text + "': expected a whole number from " +
                                            std::to_string(lo) + " to " + std::to_string(hi));
}

int64_t IdFrom(const std::string& text, const char* what) {
  return NumberFrom(text, what, 1, std::numeric_limits<int64_t>::max());
}

nlohmann::json JsonBody(const Request& request) {
  if (JsonNestingDepth(request.body) > kMaxJsonDepth) {
    throw Error(ErrorCode::kInvalidInput, "the request body nests more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded()) throw Error(ErrorCode::kInvalidInput, "the request body is not JSON");
  return body;
}

// GET /procnode/status, with who the caller is and whether they may change rules and jobs (the
// admin page shows itself read-only, with the reason, to everyone else).
void GetStatus(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  auto status = g_node->Status();
  const auto refusal = g_node->AdministrationRefusal(request.caller);
  status["caller"] = {{"name", request.caller.verified ? nlohmann::json(request.caller.name) : nlohmann::json(nullptr)},
                      {"verified", request.caller.verified},
                      {"admin", !refusal.has_value()},
                      {"refusal", refusal ? nlohmann::json(*refusal) : nlohmann::json(nullptr)}};
  Answer(output, status);
}

// GET /procnode/dicom/keywords: the data dictionary's public keywords (the rule editor completes
// attribute names from it): [{"keyword", "tag": "(gggg,eeee)", "vr"}].
void GetDicomKeywords(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  static const nlohmann::json list = [] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& k : DicomKeywords()) {
      char tag[16];
      std::snprintf(tag, sizeof tag, "(%04X,%04X)", k.tag >> 16, k.tag & 0xFFFFu);
      out.push_back({{"keyword", k.keyword}, {"tag", tag}, {"vr", k.vr}});
    }
    return out;
  }();
  Answer(output, list);
}

void PostReidentify(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "POST")) return;
  bool forbidden = false;
  const auto answer = g_node->Reidentify(JsonBody(request), request.caller, &forbidden);
  if (forbidden) {
    AnswerError(output, 403, answer["error"].get<std::string>());
    return;
  }
  Answer(output, answer);
}

// GET /procnode/metrics: Prometheus text exposition format 0.0.4.
void GetMetrics(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  const std::string text = g_node->MetricsText();
  OrthancPluginAnswerBuffer(orthanc::Context(), output, text.data(), static_cast<uint32_t>(text.size()),
                            "text/plain; version=0.0.4; charset=utf-8");
}

// Orthanc's own /tools/metrics-prometheus asks for fresh values: the main gauges (floats only in
// Orthanc 1.10).
void RefreshOrthancMetrics() {
  try {
    if (!g_node) return;
    for (const auto& [name, value] : g_node->MainGauges()) {
      OrthancPluginSetMetricsValue(orthanc::Context(), name.c_str(), value, OrthancPluginMetricsType_Default);
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kWarning, std::string("metrics for Orthanc not refreshed: ") + e.what());
  } catch (...) {
    Log(LogLevel::kWarning, "metrics for Orthanc not refreshed");
  }
}

void GetProcessors(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  nlohmann::json list = nlohmann::json::array();
  for (const Processor* p : g_node->Processors().All()) list.push_back(ProcessorJson(p->Info()));
  Answer(output, list);
}

void GetJobs(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  std::optional<std::string> state;
  int limit = 100;
  for (uint32_t i = 0; i < request.raw->getCount; ++i) {
    const std::string key = request.raw->getKeys[i], value = request.raw->getValues[i];
    if (key == "state") state = value;
    if (key == "limit") limit = static_cast<int>(NumberFrom(value, "limit", 1, 10000));
  }
  if (state && !IsJobState(*state)) {
    throw Error(ErrorCode::kInvalidInput, "state '" + *state + "': expected queued, running, done, failed or cancelled");
  }
  Answer(output, g_node->Jobs(state, limit));
}

void GetWorkers(OrthancPluginRestOutput* output, const Request& request) {
  if (Only(output, request, "GET")) Answer(output, g_node->Workers());
}

void GetJob(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  const std::string text = request.Group(0);
  const auto job = g_node->JobDetail(IdFrom(text, "job id"));
  if (!job) throw Error(ErrorCode::kNotFound, "job " + text + " does not exist");
  Answer(output, *job);
}

// GET /procnode/jobs/{id}/files/{name}: a file the job kept (a tool's derived image or log).
void GetJobFile(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  const std::string name = request.Group(1);
  const std::string bytes = g_node->JobFile(IdFrom(request.Group(0), "job id"), name);
  const char* mime = name.ends_with(".gz") ? "application/gzip" : name.ends_with(".log") ? "text/plain; charset=utf-8"
                                                                                         : "application/octet-stream";
  OrthancPluginAnswerBuffer(orthanc::Context(), output, bytes.data(), static_cast<uint32_t>(bytes.size()), mime);
}

void PostJobAction(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "POST")) return;
  const int64_t id = IdFrom(request.Group(0), "job id");
  const std::string action = request.Group(1);
  const std::string who = request.caller.name;
  Answer(output, action == "retry"    ? g_node->RetryJob(id, who)
                 : action == "cancel" ? g_node->CancelJob(id, who)
                                      : g_node->ResendJob(id, who));
}

void RulesRoot(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET,PUT")) return;
  if (request.method == "GET") {
    Answer(output, g_node->Rules());
    return;
  }
  Answer(output, g_node->SaveRules(request.body, request.caller.name, request.Header("x-procnode-comment").value_or("")));
}

void RulesHistory(OrthancPluginRestOutput* output, const Request& request) {
  if (Only(output, request, "GET")) Answer(output, g_node->RulesHistory());
}

void RulesVersion(OrthancPluginRestOutput* output, const Request& request) {
  if (Only(output, request, "GET")) Answer(output, g_node->RulesVersion(static_cast<int>(NumberFrom(request.Group(0), "version", 1, std::numeric_limits<int>::max()))));
}

void RulesRollback(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "POST")) return;
  const auto body = JsonBody(request);
  if (!body.contains("version") || !body["version"].is_number_integer()) {
    throw Error(ErrorCode::kInvalidInput, "body: {\"version\": N} expected");
  }
  const auto version = body["version"].get<int64_t>();
  if (version < 1 || version > std::numeric_limits<int>::max()) throw Error(ErrorCode::kInvalidInput, "version: out of range");
  Answer(output, g_node->RollbackRules(static_cast<int>(version), request.caller.name));
}

void RulesValidate(OrthancPluginRestOutput* output, const Request& request) {
  if (Only(output, request, "POST")) Answer(output, g_node->ValidateRules(request.body));
}

void RulesDryRun(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "POST")) return;
  const auto body = JsonBody(request);
  if (!body.contains("study") || !body["study"].is_string()) {
    throw Error(ErrorCode::kInvalidInput, "body: {\"study\": \"<Orthanc study ID>\", \"rules\": {...} (optional)} expected");
  }
  Answer(output, g_node->DryRun(body["study"], body.contains("rules") ? body["rules"].dump() : ""));
}

// POST /procnode/rules/replay {"rules": {draft}, "last": N (default 20, 1-500)} or with "from"
// and/or "to" (YYYYMMDD): the draft and the current rule set side by side over stored studies.
void RulesReplay(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "POST")) return;
  const auto body = JsonBody(request);
  if (!body.is_object() || !body.contains("rules") || !body["rules"].is_object()) {
    throw Error(ErrorCode::kInvalidInput,
                "body: {\"rules\": {...}, \"last\": N} or {\"rules\": {...}, \"from\": \"YYYYMMDD\", \"to\": \"YYYYMMDD\"} expected");
  }
  int last = 20;
  if (body.contains("last")) {
    if (!body["last"].is_number_integer() || body["last"].get<int64_t>() < 1 || body["last"].get<int64_t>() > 500) {
      throw Error(ErrorCode::kInvalidInput, "last: must be an integer from 1 to 500");
    }
    last = body["last"].get<int>();
  }
  std::string range[2];
  const char* keys[2] = {"from", "to"};
  for (int i = 0; i < 2; ++i) {
    if (!body.contains(keys[i])) continue;
    const auto& value = body[keys[i]];
    if (!value.is_string() || value.get<std::string>().size() != 8 ||
        value.get<std::string>().find_first_not_of("0123456789") != std::string::npos) {
      throw Error(ErrorCode::kInvalidInput, std::string(keys[i]) + ": must be a date as YYYYMMDD");
    }
    range[i] = value.get<std::string>();
  }
  Answer(output, g_node->Replay(body["rules"].dump(), last, range[0], range[1]));
}

// GET /procnode/series/{id}/nifti[?part=N]: the series as NIfTI-1, gzip-compressed (dcm2niix
// conventions); part N of a multi-part series (default 1).
void GetSeriesNifti(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  int part = 1;
  for (uint32_t i = 0; i < request.raw->getCount; ++i) {
    if (std::string(request.raw->getKeys[i]) == "part") part = static_cast<int>(NumberFrom(request.raw->getValues[i], "part", 1, 100000));
  }
  const std::string bytes = g_node->SeriesNifti(request.Group(0), part);
  OrthancPluginAnswerBuffer(orthanc::Context(), output, bytes.data(), static_cast<uint32_t>(bytes.size()),
                            "application/gzip");
}

// GET /procnode/ui/{file}: the admin page (web/), compiled in.
void GetUi(OrthancPluginRestOutput* output, const Request& request) {
  if (!Only(output, request, "GET")) return;
  const std::string name = request.Group(0);
  const auto& assets = WebAssets();
  const auto it = assets.find(name);
  if (it == assets.end()) throw Error(ErrorCode::kNotFound, "no page " + name);
  OrthancPluginAnswerBuffer(orthanc::Context(), output, it->second.content.data(),
                            static_cast<uint32_t>(it->second.content.size()), it->second.mime.c_str());
}

// /procnode/ui and /procnode/ui/ (Orthanc drops the trailing slash) lead to the page itself, so that
// its relative links (app.js, ../rules) resolve under /procnode/ui/.
void RedirectUi(OrthancPluginRestOutput* output, const Request&) {
  OrthancPluginRedirect(orthanc::Context(), output, "/procnode/ui/index.html");
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
      case OrthancPluginChangeType_NewSeries:
        if (g_node) g_node->OnNewSeries(resource_id);  // watched for early start elsewhere
        break;
      case OrthancPluginChangeType_StableStudy:
        if (g_node) g_node->OnStableStudy(resource_id);  // enqueue only: the work happens elsewhere
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("change callback failed: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "change callback failed");
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
    g_node = std::make_unique<Node>(std::move(config), g_rest);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("cannot start: ") + e.what());
    orthanc::InstallLogSink(nullptr);
    return -1;
  } catch (...) {
    Log(LogLevel::kError, "cannot start: unknown error");
    orthanc::InstallLogSink(nullptr);
    return -1;
  }
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/status", Protect<GetStatus>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/processors", Protect<GetProcessors>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/dicom/keywords", Protect<GetDicomKeywords>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/metrics", Protect<GetMetrics>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/reidentify", Protect<PostReidentify>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs", Protect<GetJobs>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/workers", Protect<GetWorkers>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs/([^/]+)", Protect<GetJob>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs/([^/]+)/files/([A-Za-z0-9][A-Za-z0-9._-]*)",
                                          Protect<GetJobFile>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/jobs/([^/]+)/(retry|cancel|resend)",
                                          Protect<PostJobAction, kAdminOnly>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules", Protect<RulesRoot, kAdminOnly>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/history", Protect<RulesHistory>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/history/([0-9]+)", Protect<RulesVersion>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/rollback", Protect<RulesRollback, kAdminOnly>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/validate", Protect<RulesValidate>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/dry-run", Protect<RulesDryRun>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/rules/replay", Protect<RulesReplay>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/series/([^/]+)/nifti", Protect<GetSeriesNifti>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/ui", Protect<RedirectUi>);
  OrthancPluginRegisterRestCallbackNoLock(context, "/procnode/ui/([a-z0-9._-]+)", Protect<GetUi>);
  OrthancPluginRegisterOnChangeCallback(context, OnChange);
  OrthancPluginRegisterRefreshMetricsCallback(context, RefreshOrthancMetrics);
  Log(LogLevel::kInfo, std::string("version ") + kVersion + " initialised");
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize() {
  using namespace procnode;
  try {
    if (g_node) g_node->StopWork();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("stopping: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "stopping: unknown error");
  }
  g_node.reset();
  orthanc::InstallLogSink(nullptr);
  orthanc::SetContext(nullptr);
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() { return "procnode"; }

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() { return procnode::kVersion; }

}  // extern "C"
