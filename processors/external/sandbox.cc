#include "processors/external/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <algorithm>

#include "core/error.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;

// The last `limit` bytes of a stream.
class Tail {
 public:
  explicit Tail(std::size_t limit) : limit_(limit) {}
  void Add(const char* data, std::size_t size) {
    text_.append(data, size);
    if (text_.size() > 2 * limit_ + 4096) {
      text_.erase(0, text_.size() - limit_);
      truncated_ = true;
    }
  }
  std::string Take(bool& truncated) {
    if (text_.size() > limit_) {
      text_.erase(0, text_.size() - limit_);
      truncated_ = true;
    }
    truncated = truncated_;
    return std::move(text_);
  }

 private:
  std::size_t limit_;
  std::string text_;
  bool truncated_ = false;
};

uint64_t FolderBytes(const std::string& folder) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const auto size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

// The system part of the sandbox: programs and libraries read-only, and the few files of /etc
// that loading them needs (no secrets: no shadow, no ssl keys, no Orthanc or PostgreSQL files).
void SystemMounts(std::vector<std::string>& args) {
  args.insert(args.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    const auto status = fs::symlink_status(top, ec);
    if (ec || !fs::exists(status)) continue;
    if (fs::is_symlink(status)) {
      args.insert(args.end(), {"--symlink", fs::read_symlink(top, ec).string(), top});
    } else if (fs::is_directory(status)) {
      args.insert(args.end(), {"--ro-bind", top, top});
    }
  }
  for (const char* file : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                           "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/mime.types",
                           "/etc/fonts", "/etc/octave", "/etc/matplotlibrc"}) {
    args.insert(args.end(), {"--ro-bind-try", file, file});
  }
  std::error_code ec;
  for (fs::directory_iterator it("/etc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("python3", 0) == 0) args.insert(args.end(), {"--ro-bind-try", it->path().string(), it->path().string()});
  }
}

std::vector<std::string> BwrapArguments(const std::string& bwrap, const SandboxSpec& spec) {
  std::vector<std::string> args{bwrap,          "--unshare-all",   "--unshare-user", "--uid",     "65534", "--gid", "65534",
                                "--disable-userns", "--cap-drop", "ALL",  "--die-with-parent", "--new-session",
                                "--hostname", "sandbox", "--clearenv"};
  SystemMounts(args);
  args.insert(args.end(), {"--proc", "/proc", "--dev", "/dev"});
  if (spec.gpu) {
    std::error_code ec;
    for (fs::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind("nvidia", 0) == 0) {
        args.insert(args.end(), {"--dev-bind-try", it->path().string(), it->path().string()});
      }
    }
  }
  for (const auto& mount : spec.mounts) {
    args.insert(args.end(), {mount.writable ? "--bind" : "--ro-bind", mount.host, mount.inside});
  }
  for (const auto& [name, value] : spec.env) args.insert(args.end(), {"--setenv", name, value});
  args.insert(args.end(), {"--chdir", spec.working_directory, "--"});
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  return args;
}

void SetLimit(int resource, uint64_t soft, uint64_t hard) {
  rlimit limit{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
  ::setrlimit(resource, &limit);
}

// What the sandbox's processes use, sampled from /proc (bwrap does not reap its PID 1 into its
// own usage, so wait4's figures would be bwrap's alone): the highest resident set of any process
// (VmHWM, kept by the kernel, so a peak between samples is not missed while the process lives),
// the highest total resident set, and the CPU time each process had used when last seen.
struct Usage {
  uint64_t peak_process = 0, peak_total = 0;
  std::map<pid_t, double> cpu_by_process;
  double CpuSeconds() const {
    double total = 0;
    for (const auto& [pid, seconds] : cpu_by_process) total += seconds;
    return total;
  }
};

// A small /proc file, "" when it cannot be read: a process may end between the open and the read
// (ESRCH), which std::ifstream reports by throwing.
std::string ReadSmall(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0 && text.size() < (1 << 20);) text.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

uint64_t StatusKib(const std::string& status, const char* key) {
  const auto at = status.find(key);
  return at == std::string::npos ? 0 : std::strtoull(status.c_str() + at + std::strlen(key), nullptr, 10);
}

void Descendants(pid_t pid, std::vector<pid_t>& out, int depth) {
  if (depth > 64 || out.size() > 4096) return;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec), end; !ec && it != end; it.increment(ec)) {
    std::istringstream children(ReadSmall((it->path() / "children").string()));
    for (pid_t child; children >> child;) {
      out.push_back(child);
      Descendants(child, out, depth + 1);
    }
  }
}

void Sample(pid_t bwrap, Usage& usage) {
  std::vector<pid_t> pids;
  Descendants(bwrap, pids, 0);
  uint64_t total = 0;
  for (pid_t pid : pids) {
    const std::string status = ReadSmall("/proc/" + std::to_string(pid) + "/status");
    usage.peak_process = std::max(usage.peak_process, StatusKib(status, "VmHWM:") * 1024);
    total += StatusKib(status, "VmRSS:") * 1024;
  }
  usage.peak_total = std::max(usage.peak_total, total);
  // Each process's own CPU time (fields 14 and 15 of its stat, in clock ticks), last seen.
  for (pid_t pid : pids) {
    const std::string stat = ReadSmall("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int index = 3; fields >> field && index <= 15; ++index) {
      if (index >= 14) ticks += std::strtod(field.c_str(), nullptr);
    }
    usage.cpu_by_process[pid] = ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

std::string BwrapPath() {
  for (const char* candidate : {"/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return "";
}

SandboxRun RunSandboxed(const SandboxSpec& spec) {
  const std::string bwrap = BwrapPath();
  if (bwrap.empty()) {
    throw Error(ErrorCode::kUnavailable, "bubblewrap (bwrap) is not installed: external tools run only in its sandbox "
                                         "(apt install bubblewrap)");
  }
  if (spec.argv.empty()) throw Error(ErrorCode::kInvalidInput, "sandbox: no program to run");
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  const std::vector<std::string> args = BwrapArguments(bwrap, spec);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  static char kPath[] = "PATH=/usr/bin:/bin";
  char* envp[] = {kPath, nullptr};

  std::array<int, 2> out{-1, -1}, err{-1, -1};
  if (::pipe2(out.data(), O_CLOEXEC) != 0 || ::pipe2(err.data(), O_CLOEXEC) != 0) {
    throw Error(ErrorCode::kInternal, std::string("sandbox: pipe: ") + std::strerror(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const uint64_t cpu = static_cast<uint64_t>(spec.cpu_seconds);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(ErrorCode::kInternal, std::string("sandbox: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(null_fd, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    SetLimit(RLIMIT_AS, spec.memory_bytes, spec.memory_bytes);
    SetLimit(RLIMIT_CPU, cpu, cpu + 5);
    SetLimit(RLIMIT_FSIZE, spec.file_size_bytes, spec.file_size_bytes);
    SetLimit(RLIMIT_CORE, 0, 0);
    SetLimit(RLIMIT_NOFILE, 1024, 1024);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp);
    static const char kFailed[] = "procnode: cannot start bwrap\n";
    (void)!::write(2, kFailed, sizeof kFailed - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with the kill below
  ::close(out[1]);
  ::close(err[1]);
  if (null_fd >= 0) ::close(null_fd);

  SandboxRun run;
  Tail out_tail(spec.log_bytes), err_tail(spec.log_bytes);
  std::string line;
  auto take = [&](int fd, Tail& tail, bool is_stdout) {
    char buffer[65536];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    tail.Add(buffer, static_cast<std::size_t>(n));
    if (is_stdout && spec.on_stdout_line) {
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] == '\n') {
          spec.on_stdout_line(line);
          line.clear();
        } else if (line.size() < 4096) {
          line.push_back(buffer[i]);
        }
      }
    }
    return true;
  };
  // The pipes and, where the kernel has pidfds (5.3+), the process itself: its exit wakes the poll
  // at once instead of at the next tick.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  std::array<pollfd, 3> fds{pollfd{out[0], POLLIN, 0}, pollfd{err[0], POLLIN, 0}, pollfd{pidfd, POLLIN, 0}};
  auto kill_tree = [&](const char* why) {
    if (run.limit.empty()) run.limit = why;
    ::kill(-pid, SIGKILL);  // bwrap; its PID 1 dies with it (--die-with-parent), and the namespace with that
  };
  int status = 0;
  rusage usage{};
  Usage sampled;
  auto last_size_check = started;
  bool exited = false;
  while (!exited) {
    const bool pipes_open = fds[0].fd >= 0 || fds[1].fd >= 0;
    const int ready = ::poll(fds.data(), fds.size(), pipes_open || pidfd >= 0 ? 100 : 10);
    if (ready > 0) {
      for (std::size_t i = 0; i < 2; ++i) {
        if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
          if (!take(fds[i].fd, i == 0 ? out_tail : err_tail, i == 0)) fds[i].fd = -1;
        }
      }
    }
    Sample(pid, sampled);
    const pid_t waited = ::wait4(pid, &status, WNOHANG, &usage);
    if (waited == pid) {
      exited = true;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - started).count() > spec.wall_seconds) kill_tree("time");
    if (spec.stop_requested && spec.stop_requested()) kill_tree("cancelled");
    if (!spec.watched_folders.empty() && now - last_size_check > std::chrono::milliseconds(250)) {
      last_size_check = now;
      uint64_t total = 0;
      for (const auto& folder : spec.watched_folders) total += FolderBytes(folder);
      if (total > spec.watched_bytes) kill_tree("output size");
    }
  }
  run.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (pidfd >= 0) ::close(pidfd);
  // The sandbox is gone, and with it every writer of the pipes: read what is left.
  for (std::size_t i = 0; i < 2; ++i) {
    if (fds[i].fd < 0) continue;
    ::fcntl(fds[i].fd, F_SETFL, O_NONBLOCK);
    while (take(fds[i].fd, i == 0 ? out_tail : err_tail, i == 0)) {
    }
  }
  if (!line.empty() && spec.on_stdout_line) spec.on_stdout_line(line);
  ::close(out[0]);
  ::close(err[0]);
  run.stdout_tail = out_tail.Take(run.stdout_truncated);
  run.stderr_tail = err_tail.Take(run.stderr_truncated);
  run.peak_rss_bytes = std::max({static_cast<uint64_t>(usage.ru_maxrss) * 1024, sampled.peak_process, sampled.peak_total});
  run.cpu_seconds = std::max(Seconds(usage.ru_utime) + Seconds(usage.ru_stime), sampled.CpuSeconds());
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  // bwrap reports a sandbox it could not make (no user namespaces) on stderr with exit code 1,
  // before the program ran: refuse, naming the reason, rather than fail the tool.
  if (run.exit_code == 1 && run.stderr_tail.rfind("bwrap: ", 0) == 0) {
    throw Error(ErrorCode::kUnavailable, "the sandbox cannot be made on this system: " +
                                             run.stderr_tail.substr(0, run.stderr_tail.find('\n')));
  }
  // A program killed by a signal inside: bwrap exits with 128 + the signal.
  if (run.exit_code > 128 && run.exit_code < 128 + 65) {
    run.signal = run.exit_code - 128;
    run.exit_code = -1;
  }
  return run;
}

std::string SandboxFailure(const SandboxRun& run, const SandboxSpec& spec) {
  if (run.limit == "time") return "time limit of " + std::to_string(static_cast<int>(spec.wall_seconds)) + " s reached";
  if (run.limit == "output size") return "its files passed the size limit of " + Mib(spec.watched_bytes);
  if (run.limit == "cancelled") return "cancelled";
  if (run.signal == SIGXFSZ) return "killed by SIGXFSZ: a file reached the size limit of " + Mib(spec.file_size_bytes);
  if (run.signal == SIGXCPU) return "killed by SIGXCPU: CPU time limit of " + std::to_string(spec.cpu_seconds) + " s reached";
  if (run.signal != 0) {
    const bool memory_like = run.signal == SIGSEGV || run.signal == SIGABRT || run.signal == SIGBUS;
    return "killed by signal " + std::to_string(run.signal) + " (" + strsignal(run.signal) + ")" +
           (memory_like ? "; the memory limit of " + Mib(spec.memory_bytes) + " may have been reached" : "");
  }
  if (run.exit_code == 0) return "";
  std::string why = "exit code " + std::to_string(run.exit_code);
  for (const char* sign : {"MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "Out of memory"}) {
    if (run.stderr_tail.find(sign) != std::string::npos) {
      return why + ": memory limit of " + Mib(spec.memory_bytes) + " reached (" + sign + ")";
    }
  }
  return why;
}

}  // namespace procnode
