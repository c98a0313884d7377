// gpt-rank on the GPU end to end, on the demo data (skips without a GPU or the data):
// - 200 iterations in bf16 track the fp32 CPU run's loss within 2% at every log point;
// - fp16 with a forced overflow skips that iteration and halves the scale;
// - a checkpoint written by the GPU run resumes on the CPU, and the reverse, and
//   the resumed losses follow the uninterrupted run (fp32 on both: 1e-3 relative, the
//   GPU's fp32 differs from the CPU's only in summation order).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "tests/gpu/support/gpu_test_util.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

#define SKIP_WITHOUT_GPU_OR_DATA() \
  SKIP_WITHOUT_GPU();              \
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why

// The small job with a head size the CUDA attention takes (64) and no evaluation.
json GpuJob(const std::string& dir, int iters) {
  json job = SmallJob(dir);
  job["model"]["hidden_size"] = 128;
  job["model"]["num_attention_heads"] = 2;
  job["model"]["seq_length"] = 64;
  job["model"]["max_position_embeddings"] = 64;
  job["training"]["train_iters"] = iters;
  job["training"]["eval_iters"] = 0;
  job["training"]["save_interval"] = 0;
  job["training"]["log_interval"] = 10;
  job["training"]["threads"] = 8;
  return job;
}

RunResult Train(const json& job, const std::string& path,
                const std::map<std::string, std::string>& env = {}) {
  return RunCommand({GptRank(), "train", "--config", WriteJob(path, job)}, env, 600000);
}

TEST(CudaTrainingTest, Bf16TracksTheFp32CpuLossWithinTwoPercent) {
  SKIP_WITHOUT_GPU_OR_DATA();
  TempDir dir;
  RunResult cpu = Train(GpuJob(dir.File("cpu"), 200), dir.File("cpu.json"));
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  json gpu = GpuJob(dir.File("gpu"), 200);
  gpu["training"]["device"] = "cuda";
  gpu["bf16"] = {{"enabled", true}};
  RunResult r = Train(gpu, dir.File("gpu.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("GPU memory plan"), std::string::npos) << r.err;
  const auto a = LossPerIteration(dir.File("cpu/save")), b = LossPerIteration(dir.File("gpu/save"));
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), a.size());
  for (const auto& [it, loss] : a) {
    EXPECT_LE(std::fabs(b.at(it) - loss) / loss, 0.02)
        << "iteration " << it << ": bf16 GPU " << b.at(it) << ", fp32 CPU " << loss;
  }
  EXPECT_LT(b.rbegin()->second, b.begin()->second - 1.0) << "the loss did not fall";
}

TEST(CudaTrainingTest, Fp16ForcedOverflowSkipsTheIterationAndHalvesTheScale) {
  SKIP_WITHOUT_GPU_OR_DATA();
  TempDir dir;
  json job = GpuJob(dir.path(), 6);
  job["training"]["device"] = "cuda";
  job["training"]["log_interval"] = 1;
  job["fp16"] = {{"enabled", true}, {"initial_scale_power", 12}, {"hysteresis", 1}};
  RunResult r = Train(job, dir.File("job.json"), {{"GPT_RANK_INJECT_OVERFLOW", "3"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipping iteration 3 (no update), loss scale 4096 -> 2048"),
            std::string::npos)
      << r.err;
  std::map<int64_t, json> lines;
  for (const json& j : ReadJsonLines(dir.File("save/metrics.jsonl"))) {
    if (j.contains("lm_loss")) lines[j["iteration"].get<int64_t>()] = j;
  }
  EXPECT_EQ(lines.at(2)["loss_scale"].get<double>(), 4096.0);
  EXPECT_EQ(lines.at(3)["loss_scale"].get<double>(), 2048.0);
  EXPECT_EQ(lines.at(3)["skipped_iterations"].get<int64_t>(), 1);
}

TEST(CudaTrainingTest, CheckpointsMoveBetweenGpuAndCpu) {
  SKIP_WITHOUT_GPU_OR_DATA();
  TempDir dir;
  // The reference: 20 iterations on the CPU without a break.
  ASSERT_EQ(Train(GpuJob(dir.File("ref"), 20), dir.File("ref.json")).exit_code, 0);
  const auto ref = LossPerIteration(dir.File("ref/save"));
  for (const std::string first : {"cuda", "cpu"}) {
    const std::string second = first == "cuda" ? "cpu" : "cuda";
    const std::string run = dir.File(first + "-then-" + second);
    json a = GpuJob(run, 10);
    a["training"]["device"] = first;
    RunResult ra = Train(a, run + "-a.json");
    ASSERT_EQ(ra.exit_code, 0) << ra.err;
    json b = GpuJob(run, 20);
    b["training"]["device"] = second;
    b["training"]["load"] = run + "/save";
    RunResult rb = Train(b, run + "-b.json");
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_NE(rb.err.find("resumed from"), std::string::npos) << rb.err;
    const auto got = LossPerIteration(run + "/save");
    ASSERT_EQ(got.size(), 2u) << first;  // log_interval 10: iterations 10 and 20
    for (const auto& [it, loss] : got) {
      EXPECT_NEAR(loss, ref.at(it), 1e-3 * ref.at(it))
          << first << " then " << second << ", it " << it;
    }
  }
}

}  // namespace
}  // namespace gpt_rank::e2e
