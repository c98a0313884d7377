// harness_victim DIR WORLD [mpirun]: stands in for an end-to-end test binary that
// ctest's timeout SIGKILLs (harness_cleanup_test). It starts WORLD ranks that sleep
// until killed (rank_probe) through the e2e harness (StartRanks), and one more child
// through RunCommand, all marked COORD_HARNESS_VICTIM=DIR; writes their PIDs to DIR/pids
// (one a line, complete once the file exists) and waits to be killed.
// With `mpirun`: it starts the WORLD ranks under `mpirun -np WORLD` through RunCommand
// (stop signal SIGTERM, as the mpirun e2e test does) instead, and writes DIR/pids once
// mpirun and its WORLD ranks all run.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace {

// DIR/pids, whole once it exists (written aside, then renamed); then waits to be killed.
// Returns 1 if it cannot write it.
int PublishPidsAndWait(const std::string& dir, const std::string& pids) {
  if (!coord::testing::WriteTextFile(dir + "/pids.tmp", pids) ||
      std::rename((dir + "/pids.tmp").c_str(), (dir + "/pids").c_str()) != 0) {
    return 1;
  }
  for (;;) pause();
}

// The ranks under mpirun: mpirun and the WORLD ranks it forks carry the marker (-x).
int RunUnderMpirun(const std::string& dir, int world, const std::string& probe,
                   const std::map<std::string, std::string>& marker) {
  // By value: the thread outlives this frame when the ranks never show up.
  std::thread([world, probe, marker] {
    coord::testing::RunCommand(
        {"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(world), "-x",
         "COORD_HARNESS_VICTIM", probe, "--sleep-ms", "0"},
        marker, 24 * 3600 * 1000, SIGTERM);
  }).detach();
  std::vector<pid_t> pids;
  const bool all = coord::testing::WaitUntil(
      [&] {
        pids = coord::testing::ProcessesWithEnv("COORD_HARNESS_VICTIM", dir);
        return static_cast<int>(pids.size()) == world + 1;
      },
      30000, 50);
  if (!all) return 1;
  std::string text;
  for (pid_t p : pids) text += std::to_string(p) + "\n";
  return PublishPidsAndWait(dir, text);
}

}  // namespace

int main(int argc, char** argv) {
  const bool mpirun = argc == 4 && std::string(argv[3]) == "mpirun";
  if ((argc != 3 && !mpirun) || std::atoi(argv[2]) < 1) {
    std::fprintf(stderr, "usage: harness_victim DIR WORLD [mpirun]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int world = std::atoi(argv[2]);
  const std::string probe = coord::testing::BinPath("rank_probe");
  const std::map<std::string, std::string> marker = {{"COORD_HARNESS_VICTIM", dir}};
  if (mpirun) return RunUnderMpirun(dir, world, probe, marker);

  gpt_rank::e2e::StartedRanks ranks =
      gpt_rank::e2e::StartRanks(dir + "/rank", world, {probe, "--sleep-ms", "0"}, marker);
  if (!ranks.ok) return 1;
  // RunCommand waits for its child, so it runs on a thread of its own, which lives as
  // long as this process (the child's death signal follows the thread that forked).
  const std::string command_pid = dir + "/command.pid";
  std::thread([command_pid, probe, marker] {
    coord::testing::RunCommand(
        {"sh", "-c", "echo $$ > " + command_pid + "; exec " + probe + " --sleep-ms 0"}, marker,
        24 * 3600 * 1000);
  }).detach();

  std::string pids;
  for (const auto& p : ranks.procs) pids += std::to_string(p->pid()) + "\n";
  const std::string shell = coord::testing::WaitForFile(command_pid, 20000);
  if (shell.empty()) return 1;
  pids += shell;
  return PublishPidsAndWait(dir, pids);
}
