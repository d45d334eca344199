// The sandbox, run for real with Debian's bubblewrap (skipped, saying so, where it is missing).
#include "processors/external/sandbox.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;

// Processes whose command line is `sleep SECONDS` (processes that end while being looked at are
// skipped: their /proc files vanish or fail to read).
int Survivors(const std::string& seconds) {
  int found = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream cmdline(it->path() / "cmdline");
    std::string text;
    try {
      text.assign(std::istreambuf_iterator<char>(cmdline), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      continue;
    }
    if (text == "sleep" + std::string(1, '\0') + seconds + std::string(1, '\0')) ++found;
  }
  return found;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (BwrapPath().empty()) GTEST_SKIP() << "bubblewrap (bwrap) is not installed: the sandbox tests are skipped";
    root_ = fs::temp_directory_path() / ("procnode-sandbox-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_ / "in");
    fs::create_directories(root_ / "out");
    std::ofstream(root_ / "in" / "data.txt") << "input\n";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  SandboxSpec Spec(std::vector<std::string> argv) {
    SandboxSpec spec;
    spec.argv = std::move(argv);
    spec.env = {{"PATH", "/usr/bin:/bin"}, {"ONLY_THIS", "1"}};
    spec.mounts = {{(root_ / "in").string(), "/input", false}, {(root_ / "out").string(), "/output", true}};
    spec.working_directory = "/output";
    spec.wall_seconds = 20;
    return spec;
  }
  fs::path root_;
};

TEST_F(SandboxTest, RunsAProgramAndCapturesItsOutputAndExitCode) {
  const auto run = RunSandboxed(Spec({"/bin/sh", "-c", "cat /input/data.txt; echo oops >&2; echo made > /output/x; exit 3"}));
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.stdout_tail, "input\n");
  EXPECT_EQ(run.stderr_tail, "oops\n");
  EXPECT_EQ(SandboxFailure(run, Spec({"x"})), "exit code 3");
  std::ifstream made(root_ / "out" / "x");
  std::string text;
  made >> text;
  EXPECT_EQ(text, "made");
  EXPECT_GT(run.peak_rss_bytes, 0u);
}

TEST_F(SandboxTest, TheEnvironmentHoldsOnlyWhatIsGivenNoSecretOfTheNode) {
  ::setenv("PROCNODE_DATABASE", "postgresql://secret@db/jobs", 1);
  const auto run = RunSandboxed(Spec({"/usr/bin/env"}));
  ::unsetenv("PROCNODE_DATABASE");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.stdout_tail.find("secret"), std::string::npos) << run.stdout_tail;
  EXPECT_NE(run.stdout_tail.find("ONLY_THIS=1"), std::string::npos) << run.stdout_tail;
  std::istringstream lines(run.stdout_tail);
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) names.push_back(line.substr(0, line.find('=')));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ONLY_THIS", "PATH", "PWD"}));
}

TEST_F(SandboxTest, InputsAreReadOnlyAndTheHostsFilesAreNotThere) {
  const auto run = RunSandboxed(Spec({"/bin/sh", "-c",
                                      "touch /input/new 2>/dev/null && echo input-writable; "
                                      "touch /usr/new 2>/dev/null && echo usr-writable; "
                                      "ls /root /home /var /etc/shadow /etc/orthanc 2>/dev/null && echo host-visible; "
                                      "id -u; exit 0"}));
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.stdout_tail, "65534\n");
  EXPECT_FALSE(fs::exists(root_ / "in" / "new"));
}

TEST_F(SandboxTest, TheNetworkIsUnreachableEvenTheHostsLoopback) {
  // A listening socket on the host's loopback: inside, the sandbox has a loopback of its own.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string port = std::to_string(ntohs(address.sin_port));
  const auto run = RunSandboxed(Spec({"/usr/bin/python3", "-c",
                                      "import socket\n"
                                      "try:\n"
                                      "  socket.create_connection(('127.0.0.1', " + port + "), timeout=2); print('reached')\n"
                                      "except OSError as e: print('refused', e.errno)\n"}));
  ::close(listener);
  EXPECT_EQ(run.exit_code, 0) << run.stderr_tail;
  EXPECT_EQ(run.stdout_tail.rfind("refused", 0), 0u) << run.stdout_tail;
}

TEST_F(SandboxTest, TheWallTimeLimitKillsTheWholeTree) {
  SandboxSpec spec = Spec({"/bin/sh", "-c", "sleep 3171 & sleep 3172"});
  spec.wall_seconds = 1;
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.limit, "time");
  EXPECT_LT(run.wall_seconds, 5);
  EXPECT_EQ(SandboxFailure(run, spec), "time limit of 1 s reached");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Survivors("3171"), 0);
  EXPECT_EQ(Survivors("3172"), 0);
}

TEST_F(SandboxTest, AChildThatOutlivesTheToolDiesWithTheSandbox) {
  const auto run = RunSandboxed(Spec({"/bin/sh", "-c", "setsid sleep 3173 > /dev/null 2>&1 & echo forked"}));
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_LT(run.wall_seconds, 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Survivors("3173"), 0);
}

TEST_F(SandboxTest, AFileCannotGrowPastTheFileSizeLimit) {
  SandboxSpec spec = Spec({"/bin/sh", "-c", "head -c 20000000 /dev/zero > /output/big"});
  spec.file_size_bytes = 1 << 20;
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.signal, SIGXFSZ) << run.exit_code << " " << run.stderr_tail;
  EXPECT_EQ(SandboxFailure(run, spec), "killed by SIGXFSZ: a file reached the size limit of 1 MiB");
  EXPECT_LE(fs::file_size(root_ / "out" / "big"), 1u << 20);
}

TEST_F(SandboxTest, ManyFilesCannotPassTheFolderSizeLimit) {
  SandboxSpec spec = Spec({"/bin/sh", "-c", "i=0; while true; do i=$((i+1)); head -c 1000000 /dev/zero > /output/f$i; done"});
  spec.watched_folders = {(root_ / "out").string()};
  spec.watched_bytes = 8 << 20;
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.limit, "output size");
  EXPECT_EQ(SandboxFailure(run, spec), "its files passed the size limit of 8 MiB");
}

TEST_F(SandboxTest, MemoryPastTheLimitFailsTheToolNotTheNode) {
  SandboxSpec spec = Spec({"/usr/bin/python3", "-c", "x = bytearray(1 << 30)"});
  spec.memory_bytes = 256 << 20;
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(SandboxFailure(run, spec), "exit code 1: memory limit of 256 MiB reached (MemoryError)") << run.stderr_tail;
}

TEST_F(SandboxTest, ACancelledRunStopsAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  SandboxSpec spec = Spec({"/bin/sleep", "30"});
  spec.stop_requested = [start] { return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(300); };
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.limit, "cancelled");
  EXPECT_LT(run.wall_seconds, 5);
}

TEST_F(SandboxTest, StandardOutputIsBoundedAndReadLineByLine) {
  SandboxSpec spec = Spec({"/bin/sh", "-c", "echo 'progress: 0.5 half'; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo end"});
  spec.log_bytes = 1000;
  std::vector<std::string> lines;
  spec.on_stdout_line = [&](const std::string& line) { lines.push_back(line.substr(0, 20)); };
  const auto run = RunSandboxed(spec);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(run.stdout_truncated);
  EXPECT_EQ(run.stdout_tail.size(), 1000u);
  EXPECT_TRUE(run.stdout_tail.ends_with("x\nend\n"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "progress: 0.5 half");
  EXPECT_EQ(lines[2], "end");
}

}  // namespace
}  // namespace procnode
