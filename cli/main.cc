// procnode: the command-line program. Conversion to NIfTI is built in and needs only DCMTK's
// data and codec libraries, so `procnode convert` starts in about 5 ms; every other command lives
// in the procnode-commands module (cli/commands.cc), loaded on demand from beside this program or
// from ../lib/procnode/. Exit codes (design doc): 0 success, 2 bad input (the message names the
// file and the reason), 1 anything else.
#include <dcmtk/oflog/oflog.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "cli/cli_args.h"
#include "core/error.h"
#include "core/version.h"
#include "nifti/nifti1.h"
#include "nifti/series_to_nifti.h"
#include "dicom/dictionary.h"
#include "dicom/folder_source.h"
#include "dicom/private_tags.h"

namespace procnode {
namespace {

using cli::Args;
using cli::WriteFile;

// `path` with `suffix` inserted before its extension (.nii, .nii.gz or .json).
std::string WithSuffix(const std::string& path, const std::string& suffix) {
  for (const char* extension : {".nii.gz", ".nii", ".json"}) {
    const std::string ext = extension;
    if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return path.substr(0, path.size() - ext.size()) + suffix + ext;
    }
  }
  return path + suffix;
}

// A diffusion series' .bval and .bvec beside its image (`base` without extension), as dcm2niix.
void WriteGradients(const std::string& base, const NiftiConversion& conversion) {
  if (!conversion.gradients) return;
  WriteFile(base + ".bval", BvalText(*conversion.gradients));
  if (!conversion.gradients->bvecs.empty()) WriteFile(base + ".bvec", BvecText(*conversion.gradients));
}

// Converts one series; writes the image and, when `sidecar` is not empty, the JSON sidecar. A
// series of several parts (echoes, phase, field map) gets one file per part, the part's suffix
// (dcm2niix's "_e2", "_ph", ...) inserted before the extension.
void ConvertOne(StudySource& source, const SeriesRef& series, const std::string& output, const std::string& sidecar) {
  const auto parts = ConvertSeriesToNifti(source, series);
  const bool gzip = output.size() > 3 && output.compare(output.size() - 3, 3, ".gz") == 0;
  for (const auto& part : parts) {
    const std::string image_path = WithSuffix(output, part.suffix);
    WriteNiftiFile(image_path, part.image, gzip);
    if (!sidecar.empty()) WriteFile(WithSuffix(sidecar, part.suffix), part.sidecar.dump(2) + "\n");
    const std::size_t extension = image_path.ends_with(".nii.gz") ? 7 : image_path.ends_with(".nii") ? 4 : 0;
    WriteGradients(image_path.substr(0, image_path.size() - extension), part);
    for (const auto& warning : part.warnings) std::cerr << "warning: " << image_path << ": " << warning << "\n";
    if (parts.size() > 1) std::cout << image_path << "\n";
  }
}

int Convert(const Args& args) {
  if (args.positional.size() < 2) throw Error(ErrorCode::kInvalidInput, "convert needs DICOM_DIR");
  // Only conversion reads these files: vendor private data it never looks at is not parsed.
  const FolderScanOptions options{.private_groups = PrivateGroupsRead(), .private_elements = PrivateElementsRead()};
  FolderStudySource source(args.positional[1], options);
  for (const auto& skipped : source.skipped()) std::cerr << "skipped " << skipped << "\n";
  const auto series = source.ListSeries("");
  if (series.empty()) throw Error(ErrorCode::kInvalidInput, args.positional[1] + ": no DICOM series found");
  const auto compress = args.Option("compress");
  if (const auto outdir = args.Option("outdir")) {
    const bool gzip = compress.value_or("y") == "y";
    std::filesystem::create_directories(*outdir);
    int failed = 0;
    std::set<std::string> used;
    for (const auto& one : series) {
      try {
        for (const auto& conversion : ConvertSeriesToNifti(source, one)) {
          std::string stem = NiftiFileStem(conversion);
          for (int n = 2; used.contains(stem); ++n) stem = NiftiFileStem(conversion) + "_" + std::to_string(n);
          used.insert(stem);
          const auto base = std::filesystem::path(*outdir) / stem;
          WriteNiftiFile(base.string() + (gzip ? ".nii.gz" : ".nii"), conversion.image, gzip);
          WriteFile(base.string() + ".json", conversion.sidecar.dump(2) + "\n");
          WriteGradients(base.string(), conversion);
          std::cout << base.string() << (gzip ? ".nii.gz\n" : ".nii\n");
        }
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kInternal) throw;
        ++failed;
        std::cerr << "procnode: " << e.what() << "\n";
      }
    }
    return failed == 0 ? 0 : 2;
  }
  if (args.positional.size() != 3) throw Error(ErrorCode::kInvalidInput, "convert needs OUT.nii[.gz] or --outdir DIR");
  if (compress) {
    throw Error(ErrorCode::kInvalidInput, "convert: -z goes with --outdir; with OUT, its name says it (.nii or .nii.gz)");
  }
  if (series.size() != 1) {
    throw Error(ErrorCode::kInvalidInput, args.positional[1] + ": holds " + std::to_string(series.size()) +
                                              " series; use --outdir DIR to convert each");
  }
  ConvertOne(source, series[0], args.positional[2], args.Option("sidecar").value_or(""));
  return 0;
}

// The commands module: beside this program (the build tree), or
// ../lib/procnode/ (an installation under a prefix).
std::filesystem::path CommandsModule() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto dir = ec ? std::filesystem::path(".") : self.parent_path();
  for (const auto& candidate : {dir / "procnode-commands.so", dir / ".." / "lib" / "procnode" / "procnode-commands.so"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  throw Error(ErrorCode::kInternal, "procnode-commands.so not found beside " + dir.string() + " or in " +
                                        (dir / ".." / "lib" / "procnode").lexically_normal().string() +
                                        ": the installation is incomplete");
}

int RunInCommandsModule(int argc, char** argv) {
  const auto path = CommandsModule();
  void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) throw Error(ErrorCode::kInternal, path.string() + ": " + dlerror());
  using Entry = int (*)(int, char**);
  auto entry = reinterpret_cast<Entry>(dlsym(module, "ProcnodeRunCommand"));
  if (entry == nullptr) throw Error(ErrorCode::kInternal, path.string() + ": no ProcnodeRunCommand");
  return entry(argc, argv);  // the module stays loaded until exit (its objects may outlive the call)
}

// The end of a command this program runs itself (convert, version), whose files are all closed:
// without the static destructors, whose main work would be DCMTK freeing its dictionary's 7,800
// entries one by one (a tenth of a short conversion's start-up and exit). Commands that ran in the
// module, and failures (reported by Guarded), end normally.
[[noreturn]] void EndNow(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

int Run(int argc, char** argv) {
  const Args args = cli::Parse(argc, argv);
  if (args.positional.empty()) {
    std::cerr << cli::Usage();
    return 2;
  }
  const std::string& command = args.positional[0];
  if (command == "version") {
    std::cout << "procnode " << kVersion << "\n";
    EndNow(0);
  }
  if (command == "convert") EndNow(Convert(args));
  return RunInCommandsModule(argc, argv);
}

}  // namespace
}  // namespace procnode

int main(int argc, char** argv) {
  // Before any DICOM is touched and before any thread starts (see dicom_dictionary.h).
  procnode::UseCompiledDataDictionary();
  // procnode reports unreadable files itself, naming them; DCMTK's own warnings would only repeat it.
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  return procnode::cli::Guarded([&] { return procnode::Run(argc, argv); });
}
