// harness_victim DIR WORLD: stands in for an end-to-end test binary that ctest's
// timeout SIGKILLs (harness_cleanup_test). It starts WORLD ranks that sleep until
// killed (rank_probe) through the e2e harness (StartRanks), and one more child through
// RunCommand, all marked COORD_HARNESS_VICTIM=DIR; writes their PIDs to DIR/pids (one
// a line, complete once the file exists) and waits to be killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/trainer_e2e/e2e_util.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::atoi(argv[2]) < 1) {
    std::fprintf(stderr, "usage: harness_victim DIR WORLD\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int world = std::atoi(argv[2]);
  const std::string probe = coord::testing::BinPath("rank_probe");
  const std::map<std::string, std::string> marker = {{"COORD_HARNESS_VICTIM", dir}};

  gpt_rank::e2e::StartedRanks ranks =
      gpt_rank::e2e::StartRanks(dir + "/rank", world, {probe, "--sleep-ms", "0"}, marker);
  if (!ranks.ok) return 1;
  // RunCommand waits for its child, so it runs on a thread of its own, which lives as
  // long as this process (the child's death signal follows the thread that forked).
  const std::string command_pid = dir + "/command.pid";
  std::thread([&] {
    coord::testing::RunCommand(
        {"sh", "-c", "echo $$ > " + command_pid + "; exec " + probe + " --sleep-ms 0"}, marker,
        24 * 3600 * 1000);
  }).detach();

  std::string pids;
  for (const auto& p : ranks.procs) pids += std::to_string(p->pid()) + "\n";
  const std::string shell = coord::testing::WaitForFile(command_pid, 20000);
  if (shell.empty()) return 1;
  pids += shell;
  if (!coord::testing::WriteTextFile(dir + "/pids.tmp", pids) ||
      std::rename((dir + "/pids.tmp").c_str(), (dir + "/pids").c_str()) != 0) {
    return 1;
  }
  for (;;) pause();
}
