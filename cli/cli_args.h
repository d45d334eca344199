// What both halves of the procnode command line share (the lean program, and the commands module
// it loads for everything but conversion): arguments, the usage text, file writing, and the
// mapping of errors to exit codes (design doc: 0 success, 2 bad input naming the file and the
// reason, 1 anything else).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace procnode::cli {

// Positional arguments and --key value options.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::vector<std::string> params;  // every --param k=v, in order

  std::optional<std::string> Option(const std::string& key) const {
    auto it = options.find(key);
    return it == options.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::string Required(const std::string& key) const {
    auto value = Option(key);
    if (!value) throw Error(ErrorCode::kInvalidInput, "missing --" + key);
    return *value;
  }
};

// Asks the caller to end with `code` (after --help, 0; after a usage error, 2), the message
// already printed.
struct Exit {
  int code;
};

// Parses the command line against procnode's grammar (every command, its arguments and options,
// with their help, in cli_args.cc, on CLI11): `--help`/`-h` on the program or any command prints
// its help and throws Exit{0}; an unknown or misspelt option, a missing argument or value, or a
// value outside its choices prints the reason naming it and throws Exit{2}. positional[0] is the
// command ("rules" then "validate"/"test" for its subcommands), then its positional arguments.
Args Parse(int argc, char** argv);

// The program's help (every command), for messages that end in usage.
std::string Usage();

// Writes `bytes` to `path`; throws kUnavailable naming the path when it cannot.
void WriteFile(const std::filesystem::path& path, const std::string& bytes);

// Runs `command`, printing any error as "procnode: <message>" and returning its exit code
// (Exit's code as it is).
int Guarded(const std::function<int()>& command);

}  // namespace procnode::cli
