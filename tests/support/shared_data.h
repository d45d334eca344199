// Test support: the shared real-data folder and the malformed / transfer-syntax corpora in it.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace procnode::testing {

inline std::string SharedData() { return PROCNODE_SHARED_DATA; }

// Every file of debian-pydicom-test-files and codecs-pydicom-data except their licences, sorted.
inline std::vector<std::string> CorpusFiles() {
  std::vector<std::string> files;
  for (const char* folder : {"/debian-pydicom-test-files", "/codecs-pydicom-data"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(SharedData() + folder, ec)) {
      if (entry.is_regular_file() && entry.path().filename() != "LICENSE") files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A gtest parameter name for a corpus file: its stem with unsafe characters replaced, plus the index.
inline std::string CorpusTestName(const std::string& path, std::size_t index) {
  std::string name = std::filesystem::path(path).stem().string();
  std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return name + "_" + std::to_string(index);
}

}  // namespace procnode::testing
