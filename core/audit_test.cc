#include "core/audit.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/error.h"

namespace procnode {
namespace {

// RFC 5424 (6.): <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
const std::regex kRfc5424(R"(^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S{1,255}) (\S{1,48}) (\d+) (\S{1,32}) )"
                          R"((\[audit@32473( [a-z]+="([^"\\\]]|\\["\\\]])*")+\])( .*)?$)");

TEST(Audit, RecordsAreRfc5424WithEscapedParametersAndNoLineBreaks) {
  const AuditEvent event{.who = "alice \"the admin\"", .action = "rules.save", .object = "rule set version 4]",
                         .outcome = "success", .detail = "comment: chest\nonly"};
  const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764559800123));
  const std::string line = FormatAuditRecord(event, when, "node 1", "procnode", 4711);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(line, m, kRfc5424)) << line;
  EXPECT_EQ(m[1], "109") << "facility 13 (log audit), severity 5 (notice)";
  EXPECT_EQ(m[2], "2025-12-01T03:30:00.123Z");
  EXPECT_EQ(m[3], "node1") << "no space in the host name field";
  EXPECT_EQ(m[6], "rules.save");
  EXPECT_NE(line.find(R"(who="alice \"the admin\"")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(object="rule set version 4\]")"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find(" comment: chest only"), std::string::npos);
  const std::string refused = FormatAuditRecord({.who = "bob", .action = "vault.reidentify", .object = "project p",
                                                 .outcome = "refused"}, when, "h", "procnode", 1);
  EXPECT_EQ(refused.substr(0, 5), "<108>") << "severity 4 (warning) for a refusal";
}

TEST(Audit, FileAndDatagramTargetsReceiveOneLinePerEvent) {
  const auto dir = std::filesystem::temp_directory_path() / ("audit-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    AuditLog file("file:" + (dir / "audit.log").string());
    file.Record({.who = "a", .action = "job.retry", .object = "job 1", .outcome = "success"});
    file.Record({.who = "b", .action = "job.cancel", .object = "job 2", .outcome = "success"});
    std::ifstream in(dir / "audit.log");
    std::string first, second;
    std::getline(in, first);
    std::getline(in, second);
    EXPECT_TRUE(std::regex_match(first, kRfc5424)) << first;
    EXPECT_NE(second.find("job.cancel"), std::string::npos);
  }
  {  // a syslog-style datagram socket
    const std::string path = (dir / "log.sock").string();
    const int server = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::snprintf(at.sun_path, sizeof at.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
    AuditLog unix_log("unix:" + path);
    unix_log.Record({.who = "c", .action = "node.start", .object = "node", .outcome = "success"});
    char buffer[2048] = {};
    const ssize_t n = ::recv(server, buffer, sizeof buffer - 1, 0);
    ::close(server);
    ASSERT_GT(n, 0);
    EXPECT_TRUE(std::regex_match(std::string(buffer, n), kRfc5424)) << buffer;
  }
  {  // UDP, as to a remote collector
    const int server = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
    socklen_t size = sizeof at;
    ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&at), &size), 0);
    AuditLog udp("udp://127.0.0.1:" + std::to_string(ntohs(at.sin_port)));
    udp.Record({.who = "d", .action = "vault.reidentify", .object = "project p", .outcome = "refused"});
    char buffer[2048] = {};
    const ssize_t n = ::recv(server, buffer, sizeof buffer - 1, 0);
    ::close(server);
    ASSERT_GT(n, 0);
    EXPECT_NE(std::string(buffer, n).find(R"(outcome="refused")"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Audit, AnUnknownTargetIsRefusedAndAnUnreachableOneDoesNotThrow) {
  EXPECT_THROW(AuditLog("syslogd"), Error);
  EXPECT_THROW(AuditLog("udp://nohost"), Error);
  EXPECT_THROW(AuditLog("file:"), Error);
  AuditLog nowhere("unix:/nonexistent/procnode-audit.sock");
  EXPECT_NO_THROW(nowhere.Record({.who = "e", .action = "x", .object = "y", .outcome = "success"}));
  AuditLog off("");
  EXPECT_NO_THROW(off.Record({.who = "e", .action = "x", .object = "y", .outcome = "success"}));
}

}  // namespace
}  // namespace procnode
