// Running a command-line program (Slurm's sbatch, squeue, scontrol, scancel) and reading what it
// says: argv as given (no shell, so nothing in an argument is interpreted), the environment of
// this process plus the variables given, standard output and error captured, a wall-time limit
// after which the program is killed. Blocking; thread-safe (posix_spawn: no descriptor of another
// thread leaks into the child beyond those it inherits anyway, which are marked close-on-exec).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace procnode {

struct CommandResult {
  int exit_code = -1;  // the program's, or -1 when it was killed or did not start
  bool timed_out = false;
  std::string out, err;
};

// Error(kUnavailable) when the program cannot be started (not installed, not executable), with
// the program's name and the system's reason.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& extra_env = {},
                         double timeout_seconds = 30);

}  // namespace procnode
