// Precision modes through the real gpt-rank binary on the CPU backend:
// - fp16 loss scaling by a power of two is exact in fp32, so an fp16 run on the CPU
//   (which computes in fp32) must print the fp32 run's losses bit for bit until an
//   overflow is forced (GPT_RANK_INJECT_OVERFLOW); that iteration is skipped (no
//   update: the runs diverge from the next one), logged with the scale, and the
//   dynamic scale halves (hysteresis 1) and is saved with the checkpoint;
// - training.device "cuda" without a usable GPU stops before the first step with a
//   message that says why and what to do.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

json PrecisionJob(const std::string& dir) {
  json job = SmallJob(dir);
  job["training"]["train_iters"] = 8;
  job["training"]["save_interval"] = 0;
  job["training"]["eval_iters"] = 0;
  return job;
}

TEST(GptRankPrecisionTest, Fp16OverflowSkipsTheStepAndHalvesTheScale) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string fp32_cfg = WriteJob(dir.File("fp32.json"), PrecisionJob(dir.File("fp32")));
  json fp16 = PrecisionJob(dir.File("fp16"));
  fp16["fp16"] = {{"enabled", true},
                  {"loss_scale", 0},
                  {"initial_scale_power", 10},
                  {"hysteresis", 1},
                  {"loss_scale_window", 1000}};
  const std::string fp16_cfg = WriteJob(dir.File("fp16.json"), fp16);

  RunResult a = RunCommand({GptRank(), "train", "--config", fp32_cfg}, {}, 120000);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  RunResult b = RunCommand({GptRank(), "train", "--config", fp16_cfg},
                           {{"GPT_RANK_INJECT_OVERFLOW", "4"}}, 120000);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.err.find("the CPU backend computes in fp32"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("overflow in the fp16 gradients: skipping iteration 4 (no update), "
                       "loss scale 1024 -> 512"),
            std::string::npos)
      << b.err;

  const std::map<int64_t, double> l32 = LossPerIteration(dir.File("fp32/save"));
  const std::map<int64_t, double> l16 = LossPerIteration(dir.File("fp16/save"));
  ASSERT_EQ(l32.size(), 8u);
  ASSERT_EQ(l16.size(), 8u);
  // Iterations 1-4 see the same weights (the 4th is computed, then skipped): identical.
  for (int64_t it = 1; it <= 4; ++it) EXPECT_EQ(l16.at(it), l32.at(it)) << "iteration " << it;
  // Iteration 5 runs on the weights of iteration 3, not 4: it must differ.
  EXPECT_NE(l16.at(5), l32.at(5));

  std::map<int64_t, json> lines;
  for (const json& j : ReadJsonLines(dir.File("fp16/save/metrics.jsonl"))) {
    if (j.contains("lm_loss")) lines[j["iteration"].get<int64_t>()] = j;
  }
  EXPECT_EQ(lines.at(3)["loss_scale"].get<double>(), 1024.0);
  EXPECT_EQ(lines.at(3)["skipped_iterations"].get<int64_t>(), 0);
  EXPECT_EQ(lines.at(4)["loss_scale"].get<double>(), 512.0);
  EXPECT_EQ(lines.at(4)["skipped_iterations"].get<int64_t>(), 1);
  EXPECT_EQ(lines.at(5)["skipped_iterations"].get<int64_t>(), 0);
  EXPECT_NE(b.err.find("loss scale: 512.0 | grad norm"), std::string::npos) << b.err;
  // The scaler's state is in the checkpoint, for an exact fp16 resume.
  auto latest = coord::ReadFile(dir.File("fp16/save/latest_checkpointed_iteration.txt"));
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(*latest, "8\n");
}

TEST(GptRankPrecisionTest, CudaDeviceWithoutAGpuIsAClearErrorBeforeTraining) {
  if (coord::PathExists("/dev/nvidia0")) GTEST_SKIP() << "this machine has a GPU";
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = PrecisionJob(dir.path());
  job["training"]["device"] = "cuda";
  job["model"]["num_attention_heads"] = 1;  // head size 64, which the CUDA attention takes
  job["bf16"] = {{"enabled", true}};
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 60000);
  EXPECT_EQ(r.exit_code, 2) << r.err;  // a setup error: restarting would not help
  // Built with CUDA: the driver or device is named; built without: the build is.
  const bool explained = r.err.find("no NVIDIA driver is loaded") != std::string::npos ||
                         r.err.find("no CUDA device is visible") != std::string::npos ||
                         r.err.find("built without CUDA") != std::string::npos;
  EXPECT_TRUE(explained) << r.err;
  EXPECT_NE(r.err.find("training.device \"cpu\""), std::string::npos) << r.err;
  EXPECT_FALSE(coord::PathExists(dir.File("save/metrics.jsonl")));
}

}  // namespace
}  // namespace gpt_rank::e2e
