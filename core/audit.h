// The audit trail beyond the database tables: one line per security-relevant event (vault access
// granted or refused, rule-set changes, job retry/cancel/resend, refused administration, start-up
// configuration without secrets) with who, what, on what, when and the outcome, in RFC 5424
// syslog format, so that a site ships it to its SIEM.
//
//   <PRI>1 2026-12-01T03:30:00.123Z host procnode 4711 rules.save [audit@32473 who="alice"
//   action="rules.save" object="rule set version 4" outcome="success"] saved with comment ...
//
// Facility 13 (log audit); severity notice for success, warning for refused or failed. The SD-ID
// uses the RFC 5612 documentation enterprise number: a site with its own may filter on the name.
// Targets: "syslog" (the local daemon on /dev/log), "unix:PATH" (a datagram socket), "udp://HOST:PORT",
// "file:PATH" (appended, one line per event); "" records nothing. A target that fails is said in
// the log (once a minute at most) and never stops the action it records. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace procnode {

struct AuditEvent {
  std::string who;      // verified user, "unverified caller", or "procnode" for the node itself
  std::string action;   // "vault.reidentify", "rules.save", "job.retry", "node.start", ...
  std::string object;   // what it acted on: "job 42", "rule set version 4", "project copd"
  std::string outcome;  // "success", "refused", "failed"
  std::string detail;   // free text, no PHI
};

// The RFC 5424 line of `event` (without a trailing newline).
std::string FormatAuditRecord(const AuditEvent& event, std::chrono::system_clock::time_point when, const std::string& host,
                              const std::string& app, long pid);

class AuditLog {
 public:
  // Error(kInvalidInput) naming the target when it is not one of the forms above.
  explicit AuditLog(const std::string& target);
  ~AuditLog();
  void Record(const AuditEvent& event);
  const std::string& target() const { return target_; }

 private:
  void Send(const std::string& line);
  std::string target_;
  enum class Kind { kNone, kDatagramUnix, kUdp, kFile } kind_ = Kind::kNone;
  std::string address_;  // socket path, host:port or file path
  int socket_ = -1;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_warning_{};
  std::string host_;
};

}  // namespace procnode
