// The daemons' numeric flags (coordd, coord-agent), run as the real binaries: a
// malformed or out-of-range value exits 2 before anything starts (no state dir, no
// port file), with one line naming the flag, the value, the accepted range and what to
// do; the meaningful edge values (0: never reuse checks, no reserve; -1: keep all) start.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::testing {
namespace {

struct BadValue {
  const char* flag;
  const char* value;
  const char* expected;  // the accepted values, as the error states them
};

// Runs `program` with its required flags and --flag value; it must refuse at once.
void ExpectRefused(const std::string& program, const BadValue& bad) {
  TempDir dir;
  const std::string state = dir.File("state"), port_file = dir.File("port");
  RunResult r = RunCommand({BinPath(program), "--listen", "127.0.0.1:0", "--state-dir", state,
                            "--port-file", port_file, bad.flag, bad.value},
                           {}, 20000);
  const std::string what = program + " " + bad.flag + " " + bad.value;
  EXPECT_EQ(r.exit_code, 2) << what << "\n" << r.out << r.err;
  const std::string want = program + ": " + bad.flag + " '" + bad.value + "': expected " +
                           bad.expected + "; pass a value in that range (" + program +
                           " --help says what it means)\n";
  EXPECT_EQ(r.err, want) << what;
  EXPECT_FALSE(PathExists(state)) << what << ": started before refusing";
  EXPECT_FALSE(PathExists(port_file)) << what << ": started before refusing";
}

TEST(DaemonFlagsTest, CoordAgentRefusesBadNumbers) {
  const std::vector<BadValue> cases = {
      {"--min-free-mb", "-1", "an integer in [0, 1048576]"},
      {"--min-free-mb", "-64", "an integer in [0, 1048576]"},
      {"--min-free-mb", "1048577", "an integer in [0, 1048576]"},
      {"--min-free-mb", "1.5", "an integer in [0, 1048576]"},
      {"--min-free-mb", "64MB", "an integer in [0, 1048576]"},
      {"--min-free-mb", "99999999999999999999", "an integer in [0, 1048576]"},
      {"--heartbeat-ms", "5", "an integer in [10, 600000]"},
      {"--usage-ms", "-1", "an integer in [0, 3600000]"},
      {"--grace-ms", "3600001", "an integer in [0, 3600000]"},
      {"--keep-jobs", "-2", "an integer in [-1, 1000000]"},
      {"--keep-jobs", "", "an integer in [-1, 1000000]"},
  };
  for (const BadValue& bad : cases) ExpectRefused("coord-agent", bad);
}

TEST(DaemonFlagsTest, CoorddRefusesBadNumbers) {
  const std::vector<BadValue> cases = {
      {"--check-reuse-s", "-1", "an integer in [0, 86400]"},
      {"--check-reuse-s", "86401", "an integer in [0, 86400]"},
      {"--check-reuse-s", "5m", "an integer in [0, 86400]"},
      {"--connect-timeout-ms", "0", "an integer in [1, 3600000]"},
      {"--launch-timeout-ms", "-5", "an integer in [1, 3600000]"},
      {"--heartbeat-ms", "9", "an integer in [10, 600000]"},
      {"--missed-heartbeats", "0", "an integer in [1, 1000]"},
      {"--straggler-threshold", "0.5", "0 (off) or a number in (1, 1000]"},
      {"--straggler-threshold", "1", "0 (off) or a number in (1, 1000]"},
      {"--straggler-threshold", "-1", "a number in [0, 1000]"},
      {"--straggler-threshold", "nan", "a number in [0, 1000]"},
      {"--straggler-threshold", "inf", "a number in [0, 1000]"},
      {"--straggler-window", "1", "an integer in [2, 10000]"},
      {"--journal-compact-mb", "0", "an integer in [1, 1048576]"},
      {"--keep-finished-jobs", "-1", "an integer in [0, 10000000]"},
  };
  for (const BadValue& bad : cases) ExpectRefused("coordd", bad);
}

// The edge values that mean something start the daemon (it writes its port file).
void ExpectStarts(const std::string& program, const std::vector<std::string>& flags) {
  TempDir dir;
  std::vector<std::string> argv = {BinPath(program), "--listen", "127.0.0.1:0", "--state-dir",
                                   dir.File("state"), "--port-file", dir.File("port")};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Process daemon;
  ASSERT_TRUE(daemon.Start(argv, dir.File("log")));
  EXPECT_FALSE(WaitForFile(dir.File("port"), 30000).empty())
      << program << " did not start:\n" << ReadAll(dir.File("log"));
  const int status = daemon.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadAll(dir.File("log"));
}

TEST(DaemonFlagsTest, MeaningfulEdgeValuesStart) {
  ExpectStarts("coord-agent", {"--min-free-mb", "0", "--keep-jobs", "-1", "--usage-ms", "0",
                               "--grace-ms", "0", "--heartbeat-ms", "10"});
  ExpectStarts("coordd", {"--check-reuse-s", "0", "--straggler-threshold", "0",
                          "--keep-finished-jobs", "0", "--heartbeat-ms", "600000"});
}

}  // namespace
}  // namespace coord::testing
