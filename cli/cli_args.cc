#include "cli/cli_args.h"

#include <exception>
#include <fstream>
#include <iostream>

namespace procnode::cli {

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
      if (i + 1 >= argc) throw Error(ErrorCode::kInvalidInput, arg + " needs a value");
      if (arg == "--param") {
        args.params.push_back(argv[++i]);
      } else {
        args.options[arg.substr(2)] = argv[++i];
      }
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw Error(ErrorCode::kUnavailable, path.string() + ": cannot be written");
}

int Guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const Error& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    const auto code = e.code();
    return code == ErrorCode::kInvalidInput || code == ErrorCode::kNotFound || code == ErrorCode::kUnsupported ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "procnode: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace procnode::cli
