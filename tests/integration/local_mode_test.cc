// Local mode: `coordctl start --config F` with no --hosts and no coordd runs an
// in-process coordinator and agents (127.0.0.1, 127.0.0.2, ...) in the
// foreground, and Ctrl-C (SIGINT) kills the job.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

std::string WriteSpec(const TempDir& dir, const nlohmann::json& spec) {
  std::string path = dir.File("job.json");
  EXPECT_TRUE(WriteTextFile(path, spec.dump())) << path;
  return path;
}

// No coordd listens on port 1, so coordctl falls back to local mode.
const std::map<std::string, std::string> kNoCoordinator = {{"COORD_ADDR", "127.0.0.1:1"}};

TEST(LocalModeTest, RunsTwoSimulatedNodesToCompletion) {
  TempDir dir;
  std::string spec = WriteSpec(dir, {{"name", "local"},
                                     {"launch", {{"nproc_per_node", 2},
                                                 {"command", {BinPath("rank_probe"), "--print", "2"}}}}});
  RunResult r = RunCommand({BinPath("coordctl"), "start", "--config", spec, "--local-nodes", "2",
                            "--state-dir", dir.File("state")},
                           kNoCoordinator, 60000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[127.0.0.1:0] line 1 of rank 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[127.0.0.2:3] line 1 of rank 3"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("SUCCEEDED"), std::string::npos) << r.err;
}

TEST(LocalModeTest, AFailingRankMakesExitCodeOne) {
  TempDir dir;
  std::string spec = WriteSpec(
      dir, {{"launch", {{"nproc_per_node", 2},
                        {"command", {BinPath("rank_probe"), "--exit-rank", "1", "--exit", "7",
                                     "--sleep-ms", "600000"}},
                        {"kill_grace_s", 1}}}});
  RunResult r = RunCommand({BinPath("coordctl"), "start", "--config", spec, "--state-dir",
                            dir.File("state")},
                           kNoCoordinator, 60000);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("FAILED"), std::string::npos) << r.err;
  std::string job = r.out.substr(0, r.out.find('\n'));
  ExpectJobProcessesGone(job);
}

TEST(LocalModeTest, CtrlCKillsTheJob) {
  TempDir dir;
  std::string spec = WriteSpec(
      dir, {{"launch", {{"nproc_per_node", 2},
                        {"command", {BinPath("rank_probe"), "--sleep-ms", "600000"}}}}});
  Process ctl;
  ASSERT_TRUE(ctl.Start({BinPath("coordctl"), "start", "--config", spec, "--state-dir",
                         dir.File("state")},
                        dir.File("ctl.log"), kNoCoordinator));
  std::string job;
  ASSERT_TRUE(WaitUntil([&] {
    std::string log = ReadAll(dir.File("ctl.log"));
    // The job id is the first stdout line; stderr lines start with "coordctl:".
    size_t pos = 0;
    while (pos < log.size()) {
      size_t nl = log.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string line = log.substr(pos, nl - pos);
      if (line.rfind("coordctl", 0) != 0 && line.find('-') != std::string::npos &&
          line.find(' ') == std::string::npos) {
        job = line;
      }
      pos = nl + 1;
    }
    return !job.empty() && ProcessesWithEnv("COORD_JOB_ID", job).size() == 2;
  }, 20000)) << ReadAll(dir.File("ctl.log"));
  kill(ctl.pid(), SIGINT);
  int status = 0;
  ASSERT_TRUE(WaitUntil([&] { return waitpid(ctl.pid(), &status, WNOHANG) == ctl.pid(); }, 15000));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << ReadAll(dir.File("ctl.log"));
  ExpectJobProcessesGone(job);
  EXPECT_NE(ReadAll(dir.File("ctl.log")).find("KILLED"), std::string::npos);
}

}  // namespace
}  // namespace coord::testing
