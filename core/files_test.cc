#include "core/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/stat.h>

#include "core/error.h"

namespace procnode {
namespace {

std::string Read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(WriteFileBytes, WritesAndReplaces) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "procnode-files-test.bin";
  WriteFileBytes(path.string(), std::string(100000, 'a'));
  WriteFileBytes(path.string(), "short");
  EXPECT_EQ(Read(path), "short");
  std::filesystem::remove(path);
}

TEST(WriteFileBytes, AFullDiskIsAnErrorWithTheSystemsReasonAndTheDeviceIsLeftAlone) {
  struct stat info {};
  if (::stat("/dev/full", &info) != 0 || !S_ISCHR(info.st_mode)) GTEST_SKIP() << "no /dev/full on this machine";
  try {
    WriteFileBytes("/dev/full", std::string(1 << 20, 'x'));  // every write: ENOSPC
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_EQ(std::string(e.what()), "/dev/full: cannot be written (No space left on device)");
  }
  // A small write is buffered and fails only when flushed at close: still seen.
  EXPECT_THROW(WriteFileBytes("/dev/full", "x"), Error);
  ASSERT_EQ(::stat("/dev/full", &info), 0) << "the device was removed";
  EXPECT_TRUE(S_ISCHR(info.st_mode));
}

TEST(WriteFileBytes, AMissingFolderIsNamed) {
  try {
    WriteFileBytes("/nonexistent-procnode-folder/x.bin", "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent-procnode-folder/x.bin: cannot be created (No such file or directory)");
  }
}

}  // namespace
}  // namespace procnode
