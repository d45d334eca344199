#include "core/subprocess.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace procnode {
namespace {

TEST(RunCommand, CapturesOutputErrorAndExitCode) {
  const auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(RunCommand, ArgumentsAreNotInterpretedByAShell) {
  const auto r = RunCommand({"echo", "$(id)", ";", "`x`"});
  EXPECT_EQ(r.out, "$(id) ; `x`\n");
}

TEST(RunCommand, AddsTheGivenEnvironmentToThisProcesss) {
  const auto r = RunCommand({"sh", "-c", "echo \"$PROCNODE_TEST_VALUE:${PATH:+path}\""}, {{"PROCNODE_TEST_VALUE", "42"}});
  EXPECT_EQ(r.out, "42:path\n");
}

TEST(RunCommand, KillsAProgramPastItsTimeWithItsChildren) {
  const auto r = RunCommand({"sh", "-c", "sleep 30 & sleep 30"}, {}, 0.3);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
}

TEST(RunCommand, AMissingProgramIsAnErrorNamingIt) {
  try {
    RunCommand({"procnode-no-such-program"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("procnode-no-such-program"), std::string::npos);
  }
}

}  // namespace
}  // namespace procnode
