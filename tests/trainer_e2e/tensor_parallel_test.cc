// Tensor-parallel gpt-rank as real processes (gloo over 127.0.0.1), against one rank:
//  - TP 2 and TP 4 give the TP 1 loss at every one of 20 iterations within 1e-5
//    relative, with dropout on (masks keyed on the global head and position);
//  - TP 2 x DP 2 (ZeRO-1, the optimizer partitioned inside each tensor shard) gives
//    the same losses;
//  - a checkpoint saved at TP 2 resumes at TP 1, and one saved at TP 1 at TP 4, and
//    the next 10 losses equal the uninterrupted run's within 1e-5 (Megatron's
//    mp_rank_XX shards, re-sharded at load);
//  - a tensor-parallel size that does not divide the heads is refused by name.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::TempDir;
using nlohmann::json;

std::map<int64_t, double> Train(const TempDir& dir, const std::string& cfg, const std::string& tag,
                                int world, int tp, const std::vector<std::string>& extra = {}) {
  const std::string save = dir.File(tag);
  std::vector<std::string> sets = {"training.save=" + save,
                                   "parallel.tensor_model_parallel_size=" + std::to_string(tp)};
  sets.insert(sets.end(), extra.begin(), extra.end());
  RanksResult r = RunRanks(dir, tag, world, cfg, sets, 300000);
  std::string why;
  EXPECT_TRUE(AllExitedZero(r, &why)) << tag << ": " << why;
  if (tp > 1 && !r.logs.empty()) {
    EXPECT_NE(r.logs[0].find("tensor parallel: " + std::to_string(tp) + " ranks per group"),
              std::string::npos)
        << r.logs[0];
    EXPECT_NE(r.logs[0].find(" time (ms) | forward-backward: "), std::string::npos) << r.logs[0];
    // Megatron's timers: the tensor-parallel collectives took time every iteration, and
    // no more than the iteration (they also run after forward-backward: the clip norm's
    // all-reduce waits for the slowest rank there).
    for (const json& m : ReadJsonLines(save + "/metrics.jsonl")) {
      if (!m.contains("timers_ms")) continue;
      EXPECT_GT(m["timers_ms"]["tp-comm"].get<double>(), 0.0) << m.dump();
      EXPECT_LT(m["timers_ms"]["tp-comm"].get<double>(), m["elapsed_ms"].get<double>())
          << m.dump();
    }
  }
  return LossPerIteration(save);
}

TEST(TensorParallel, TwoAndFourWayShardsGiveTheOneRankLossesWithDropout) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ParallelJob(dir.path()));
  const auto one = Train(dir, cfg, "tp1", 1, 1);
  const auto two = Train(dir, cfg, "tp2", 2, 2);
  const auto four = Train(dir, cfg, "tp4", 4, 4);
  ExpectSameLosses(one, two, 1, 20, "TP 2");
  ExpectSameLosses(one, four, 1, 20, "TP 4");
  EXPECT_LT(one.at(20), one.at(1) - 0.3);  // it trains: a frozen model would match too
}

TEST(TensorParallel, TwoWayTensorTimesTwoWayDataWithZero1GivesTheOneRankLosses) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ParallelJob(dir.path()));
  const auto one = Train(dir, cfg, "tp1", 1, 1);
  const auto grid = Train(dir, cfg, "tp2dp2", 4, 2, {"zero_optimization.stage=1"});
  ExpectSameLosses(one, grid, 1, 20, "TP 2 x DP 2, ZeRO-1");
}

TEST(TensorParallel, CheckpointsLoadAtAnotherTensorParallelSize) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ParallelJob(dir.path()));
  for (const auto& [from, to] : std::vector<std::pair<int, int>>{{2, 1}, {1, 4}}) {
    const std::string tag = "tp" + std::to_string(from) + "to" + std::to_string(to);
    const auto uninterrupted = Train(dir, cfg, tag + "-full", from, from);
    const std::string iter10 = dir.File(tag + "-full/iter_0000010");
    ASSERT_TRUE(coord::PathExists(iter10 + "/mp_rank_0" + std::to_string(from - 1) +
                                  "/manifest.json"));
    // A save directory holding only iteration 10 of the uninterrupted run.
    const std::string resume = dir.File(tag + "-resumed");
    ASSERT_EQ(coord::testing::RunCommand({"mkdir", "-p", resume}).exit_code, 0);
    ASSERT_EQ(coord::testing::RunCommand({"cp", "-a", iter10, resume + "/"}).exit_code, 0);
    std::ofstream(resume + "/latest_checkpointed_iteration.txt") << "10\n";
    const auto resumed = Train(dir, cfg, tag + "-resumed", to, to, {"training.load=" + resume});
    ExpectSameLosses(uninterrupted, resumed, 11, 20, tag);
    const std::string log = coord::testing::ReadAll(dir.File(tag + "-resumed-rank0.log"));
    EXPECT_NE(log.find("saved with tensor parallel " + std::to_string(from) +
                       ", re-sharded for " + std::to_string(to)),
              std::string::npos)
        << log;
  }
}

TEST(TensorParallel, ASizeThatDoesNotDivideTheHeadsIsRefused) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ParallelJob(dir.path()));
  RanksResult r = RunRanks(dir, "tp3", 3, cfg, {"parallel.tensor_model_parallel_size=3"}, 60000);
  for (size_t i = 0; i < r.status.size(); ++i) {
    ASSERT_TRUE(WIFEXITED(r.status[i])) << r.logs[i];
    EXPECT_NE(WEXITSTATUS(r.status[i]), 0) << r.logs[i];
  }
  EXPECT_NE(r.logs[0].find("num_attention_heads (4)"), std::string::npos) << r.logs[0];
}

}  // namespace
}  // namespace gpt_rank::e2e
