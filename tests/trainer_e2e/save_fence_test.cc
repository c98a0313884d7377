// Fenced checkpoints, end to end (issue 23): a rank of an old generation kept alive on
// purpose must not publish a checkpoint once a newer generation of its run started.
// Generation 0 stops itself (SIGSTOP) inside iteration 3, after publishing iteration 2;
// generation 1 of the same run resumes from there and finishes at iteration 8; then
// generation 0 is woken up: it trains on to iteration 4, and its save is refused with
// a message naming generation 1, leaving the tracker, generation 1's iteration 4 and
// the directory as generation 1 left them. A stale generation starting late cannot
// even begin.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::Process;
using coord::testing::ReadAll;
using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

// The state letter of /proc/PID/stat ('T': stopped), or 0.
char ProcState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() ? text[paren + 2] : 0;
}

std::map<std::string, std::string> Generation(int n) {
  return {{"TORCHELASTIC_RUN_ID", "job-fence"}, {"TORCHELASTIC_RESTART_COUNT", std::to_string(n)}};
}

TEST(GptRankSaveFenceTest, AStaleGenerationKeptAliveOnPurposePublishesNothing) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = SmallJob(dir.path());
  job["training"]["train_iters"] = 8;
  job["training"]["save_interval"] = 2;
  job["training"]["eval_interval"] = 100;
  job["training"]["threads"] = 1;
  job["training"]["save"] = dir.File("ckpt");
  job["training"]["load"] = dir.File("ckpt");
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  const std::string tracker = dir.File("ckpt/latest_checkpointed_iteration.txt");

  Process gen0;
  auto env0 = Generation(0);
  env0["GPT_RANK_INJECT_STOP"] = "0:3";
  ASSERT_TRUE(gen0.Start({GptRank(), "train", "--config", cfg}, dir.File("gen0.log"), env0));
  ASSERT_TRUE(coord::testing::WaitUntil([&] { return ProcState(gen0.pid()) == 'T'; }, 90000, 50))
      << ReadAll(dir.File("gen0.log"));
  ASSERT_EQ(ReadAll(tracker), "2\n");

  RunResult gen1 = RunCommand({GptRank(), "train", "--config", cfg}, Generation(1), 90000);
  ASSERT_EQ(gen1.exit_code, 0) << gen1.err;
  ASSERT_EQ(ReadAll(tracker), "8\n");
  const std::string iter4 = dir.File("ckpt/iter_0000004/mp_rank_00/model_optim_rng.bin");
  const std::string gen1_iter4 = ReadAll(iter4);
  ASSERT_FALSE(gen1_iter4.empty());

  ASSERT_EQ(kill(gen0.pid(), SIGCONT), 0);
  const int status = gen0.Wait(90000);
  ASSERT_NE(status, -1) << "generation 0 did not end";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  const std::string log0 = ReadAll(dir.File("gen0.log"));
  EXPECT_NE(log0.find("not published: generation 1 of run 'job-fence' has taken over"),
            std::string::npos)
      << log0;
  EXPECT_EQ(ReadAll(tracker), "8\n");
  EXPECT_TRUE(ReadAll(iter4) == gen1_iter4) << "generation 0 replaced generation 1's iteration 4";
  const auto names = coord::ListDir(dir.File("ckpt"));
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name << " left behind";
  }

  RunResult late = RunCommand({GptRank(), "train", "--config", cfg}, Generation(0), 90000);
  EXPECT_NE(late.exit_code, 0);
  EXPECT_NE(late.err.find("generation 1 of run 'job-fence' saves checkpoints here"),
            std::string::npos)
      << late.err;
  EXPECT_EQ(ReadAll(tracker), "8\n");
}

}  // namespace
}  // namespace gpt_rank::e2e
