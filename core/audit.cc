#include "core/audit.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include "core/error.h"
#include "core/log.h"

namespace procnode {
namespace {

constexpr int kFacilityLogAudit = 13;
constexpr int kSeverityWarning = 4, kSeverityNotice = 5;

// PARAM-VALUE escaping (RFC 5424 6.3.3): '"', '\' and ']' get a backslash.
std::string Param(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  return out;
}

// A header field: printable US-ASCII without spaces, at most `size` characters, "-" when empty.
std::string Field(const std::string& value, std::size_t size) {
  std::string out;
  for (const char c : value) {
    if (c > 32 && c < 127) out.push_back(c);
    if (out.size() == size) break;
  }
  return out.empty() ? "-" : out;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "-";
  return name;
}

}  // namespace

std::string FormatAuditRecord(const AuditEvent& event, std::chrono::system_clock::time_point when, const std::string& host,
                              const std::string& app, long pid) {
  const int severity = event.outcome == "success" ? kSeverityNotice : kSeverityWarning;
  const auto since_epoch = when.time_since_epoch();
  const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  const long millis = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  std::string line = "<" + std::to_string(kFacilityLogAudit * 8 + severity) + ">1 " + stamp + " " + Field(host, 255) + " " +
                     Field(app, 48) + " " + std::to_string(pid) + " " + Field(event.action, 32) + " [audit@32473 who=\"" +
                     Param(event.who) + "\" action=\"" + Param(event.action) + "\" object=\"" + Param(event.object) +
                     "\" outcome=\"" + Param(event.outcome) + "\"]";
  if (!event.detail.empty()) {
    std::string detail = event.detail;
    for (char& c : detail) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    line += " " + detail;
  }
  return line;
}

AuditLog::AuditLog(const std::string& target) : target_(target), host_(HostName()) {
  if (target.empty()) return;
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidInput, "audit target \"" + target + "\": " + why +
                                               " (syslog, unix:PATH, udp://HOST:PORT or file:PATH)");
  };
  if (target == "syslog") {
    kind_ = Kind::kDatagramUnix, address_ = "/dev/log";
  } else if (target.rfind("unix:", 0) == 0) {
    kind_ = Kind::kDatagramUnix, address_ = target.substr(5);
  } else if (target.rfind("udp://", 0) == 0) {
    kind_ = Kind::kUdp, address_ = target.substr(6);
    if (address_.rfind(':') == std::string::npos) throw bad("no port");
  } else if (target.rfind("file:", 0) == 0) {
    kind_ = Kind::kFile, address_ = target.substr(5);
  } else {
    throw bad("unknown form");
  }
  if (address_.empty()) throw bad("no address");
  if (kind_ == Kind::kDatagramUnix && address_.size() >= sizeof(sockaddr_un{}.sun_path)) throw bad("socket path too long");
}

AuditLog::~AuditLog() {
  if (socket_ >= 0) ::close(socket_);
}

void AuditLog::Record(const AuditEvent& event) {
  if (kind_ == Kind::kNone) return;
  Send(FormatAuditRecord(event, std::chrono::system_clock::now(), host_, "procnode", static_cast<long>(::getpid())));
}

void AuditLog::Send(const std::string& line) {
  std::lock_guard lock(mutex_);
  std::string problem;
  if (kind_ == Kind::kFile) {
    std::ofstream out(address_, std::ios::app);
    out << line << "\n";
    out.flush();
    if (!out) problem = "cannot append to " + address_;
  } else {
    if (socket_ < 0) socket_ = ::socket(kind_ == Kind::kUdp ? AF_INET : AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t sent = -1;
    if (socket_ >= 0 && kind_ == Kind::kDatagramUnix) {
      sockaddr_un to{};
      to.sun_family = AF_UNIX;
      std::memcpy(to.sun_path, address_.c_str(), address_.size());
      sent = ::sendto(socket_, line.data(), line.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    } else if (socket_ >= 0) {
      const auto colon = address_.rfind(':');
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_DGRAM;
      addrinfo* found = nullptr;
      if (getaddrinfo(address_.substr(0, colon).c_str(), address_.substr(colon + 1).c_str(), &hints, &found) == 0 && found) {
        sent = ::sendto(socket_, line.data(), line.size(), 0, found->ai_addr, found->ai_addrlen);
        freeaddrinfo(found);
      }
    }
    if (sent != static_cast<ssize_t>(line.size())) problem = "cannot send to " + target_ + ": " + std::strerror(errno);
  }
  if (!problem.empty()) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ > std::chrono::minutes(1)) {
      last_warning_ = now;
      Log(LogLevel::kWarning, "audit: " + problem + ": audit events are being lost (said once a minute)");
    }
  }
}

}  // namespace procnode
