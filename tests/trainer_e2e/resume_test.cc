// Exact resume: 40 iterations straight, and 20 + SIGKILL + resume + 20, give bitwise
// identical weights and Adam state (model_optim_rng.bin) and the same loss lines
// (iteration, consumed samples, lr, lm loss, grad norm; timings aside) and the same
// validation losses. Dropout is on and gradients accumulate over 2 micro-batches, so
// the data order, the dropout counter and the optimizer state all have to resume.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::Process;
using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

// iteration -> the deterministic part of its Megatron line; "v<N>" -> validation line.
std::map<std::string, std::string> LossLines(const std::string& log) {
  std::map<std::string, std::string> out;
  const std::regex line(
      R"( iteration +([0-9]+)/ +[0-9]+ \| (consumed samples: +[0-9]+) \| elapsed[^|]*\| )"
      R"((learning rate: [^|]*\| global batch size: +[0-9]+ \| lm loss: [^|]*\| )"
      R"(grad norm: [^|]*\|))");
  const std::regex valid(R"( validation loss at iteration ([0-9]+) \| (lm loss value: [^|]*\|))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    out[(*it)[1]] = (*it)[2].str() + " " + (*it)[3].str();
  }
  for (auto it = std::sregex_iterator(log.begin(), log.end(), valid);
       it != std::sregex_iterator(); ++it) {
    out["v" + (*it)[1].str()] = (*it)[2];
  }
  return out;
}

TEST(GptRankResumeTest, KilledAndResumedRunIsBitwiseIdentical) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = SmallJob(dir.path());
  job["training"]["train_iters"] = 40;
  job["training"]["save_interval"] = 20;
  job["training"]["eval_interval"] = 10;
  job["training"]["lr_warmup_iters"] = 5;

  // A: straight through.
  job["training"]["save"] = dir.File("a");
  const std::string cfg_a = WriteJob(dir.File("a.json"), job);
  RunResult a = RunCommand({GptRank(), "train", "--config", cfg_a}, {}, 90000);
  ASSERT_EQ(a.exit_code, 0) << a.err;

  // B: killed (SIGKILL) once iteration 20 is checkpointed, then resumed.
  job["training"]["save"] = dir.File("b");
  job["training"]["load"] = dir.File("b");
  const std::string cfg_b = WriteJob(dir.File("b.json"), job);
  {
    Process p;
    ASSERT_TRUE(p.Start({GptRank(), "train", "--config", cfg_b}, dir.File("b1.log")));
    const std::string latest = dir.File("b/latest_checkpointed_iteration.txt");
    coord::testing::WaitUntil(
        [&] { return coord::testing::ReadAll(latest) == "20\n" || !p.Alive(); }, 60000);
    ASSERT_EQ(coord::testing::ReadAll(latest), "20\n")
        << coord::testing::ReadAll(dir.File("b1.log"));
    p.Crash();
  }
  RunResult b = RunCommand({GptRank(), "train", "--config", cfg_b}, {}, 90000);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.err.find("resumed from " + dir.File("b/iter_0000020")), std::string::npos) << b.err;

  const std::string bin = "/iter_0000040/mp_rank_00/model_optim_rng.bin";
  auto wa = coord::ReadFile(dir.File("a") + bin);
  auto wb = coord::ReadFile(dir.File("b") + bin);
  ASSERT_TRUE(wa.ok() && wb.ok());
  EXPECT_TRUE(*wa == *wb) << "final weights / Adam state differ";

  std::map<std::string, std::string> la = LossLines(a.out + a.err);
  std::map<std::string, std::string> lb = LossLines(b.out + b.err);
  int compared = 0;
  for (int i = 21; i <= 40; ++i) {
    const std::string k = std::to_string(i);
    ASSERT_TRUE(la.count(k) && lb.count(k)) << "iteration " << i;
    EXPECT_EQ(la[k], lb[k]) << "iteration " << i;
    ++compared;
  }
  for (const char* v : {"v30", "v40"}) {
    ASSERT_TRUE(la.count(v) && lb.count(v)) << v;
    EXPECT_EQ(la[v], lb[v]) << v;
  }
  EXPECT_EQ(lb.count("20"), 0u) << "resumed run retrained iteration 20";
  std::printf("[ figures ] %d loss lines identical after resume; iteration 40: %s\n", compared,
              la["40"].c_str());
}

}  // namespace
}  // namespace gpt_rank::e2e
