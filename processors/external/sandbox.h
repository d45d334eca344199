// Running a third-party program in a sandbox: Debian's bubblewrap (bwrap) with every namespace
// unshared (no network, its own PIDs, IPC and host name), an unprivileged uid inside, no
// capabilities, only the folders named here mounted (read-only unless said), a private /tmp, and
// an environment made of exactly the variables given (no secret of the node reaches it). Limits:
// address space, CPU time and file size by rlimit (inherited by every process of the tool), wall
// time and the total size of the watched folders by this process, which kills the whole tree on
// any of them (bwrap's PID 1 takes every process of the sandbox with it). Standard output and
// error are captured, their last bytes kept. Works as root and unprivileged (user namespaces).
//
// Fails closed: without a working bwrap nothing runs (Error(kUnavailable) saying so). Blocking;
// thread-safe (each call forks its own sandbox; descriptors of other threads are not inherited).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace procnode {

struct SandboxMount {
  std::string host, inside;
  bool writable = false;
};

struct SandboxSpec {
  std::vector<std::string> argv;  // the program inside the sandbox and its arguments
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<SandboxMount> mounts;       // besides the system's read-only /usr, /etc essentials, /proc, /dev
  std::string working_directory = "/";   // inside
  bool gpu = false;                       // NVIDIA device nodes visible
  uint64_t memory_bytes = 2ull << 30;     // RLIMIT_AS of every process
  uint64_t file_size_bytes = 1ull << 30;  // RLIMIT_FSIZE: no file grows past this
  int cpu_seconds = 600;                  // RLIMIT_CPU of every process
  double wall_seconds = 600;
  std::vector<std::string> watched_folders;  // host folders whose total size is bounded ...
  uint64_t watched_bytes = 1ull << 30;       // ... by this
  std::size_t log_bytes = 64 << 10;          // the last bytes of stdout and of stderr kept
  std::function<bool()> stop_requested;      // optional: polled ten times a second
  std::function<void(const std::string& line)> on_stdout_line;  // optional
};

struct SandboxRun {
  int exit_code = -1;     // the program's, when it exited
  int signal = 0;         // what killed it, when something did
  std::string limit;      // "" or the limit that stopped it: "time", "output size", "cancelled"
  double wall_seconds = 0;
  // Sampled from /proc ten times a second (a process's own peak is kept by the kernel; the CPU
  // time of the last tenth of a second may be missing).
  double cpu_seconds = 0;
  uint64_t peak_rss_bytes = 0;
  std::string stdout_tail, stderr_tail;  // at most log_bytes each
  bool stdout_truncated = false, stderr_truncated = false;
};

// The bwrap program, or "" when none is installed.
std::string BwrapPath();

// Runs spec.argv in the sandbox and waits for it (or for a limit). Error(kUnavailable) when
// bwrap is missing or cannot make the sandbox on this system; Error(kInternal) when fork fails.
SandboxRun RunSandboxed(const SandboxSpec& spec);

// Why a run did not succeed, in words ("exit code 3", "killed by SIGXFSZ: a file reached the
// size limit of 64 MiB", "time limit of 5 s reached"); "" for exit code 0.
std::string SandboxFailure(const SandboxRun& run, const SandboxSpec& spec);

}  // namespace procnode
