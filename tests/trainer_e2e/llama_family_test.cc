// The Llama / Qwen2 family through real gpt-rank processes (gloo over 127.0.0.1), on
// the Brown corpus with the GPT-2 tokenizer (the architecture does not care):
//  - a Qwen2-shaped model (RMSNorm, RoPE, GQA in 2 groups, SwiGLU, q/k/v biases only,
//    untied output layer) at TP 2 gives the TP 1 loss at each of 20 iterations within
//    1e-5 relative, dropout on;
//  - a Llama-shaped one (no GQA, no biases, tied) over 2 pipeline stages, and with
//    ZeRO-3 over 2 data-parallel ranks, gives the one-rank losses;
//  - HF weights imported by import-hf into the job's TP 2 layout load without
//    re-sharding and train to the same losses as the TP 1 import.
#include <gtest/gtest.h>

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

json Qwen2Job(const std::string& dir) {
  json job = ParallelJob(dir);
  json& m = job["model"];
  m["normalization"] = "RMSNorm";
  m["norm_epsilon"] = 1e-6;
  m["position_embedding_type"] = "rope";
  m["rotary_base"] = 1000000.0;
  m["swiglu"] = true;
  m["ffn_hidden_size"] = 176;
  m["group_query_attention"] = true;
  m["num_query_groups"] = 2;
  m["disable_bias_linear"] = true;
  m["add_qkv_bias"] = true;
  m["untie_embeddings_and_output_weights"] = true;
  return job;
}

json LlamaJob(const std::string& dir) {
  json job = ParallelJob(dir);
  json& m = job["model"];
  m["normalization"] = "RMSNorm";
  m["position_embedding_type"] = "rope";
  m["swiglu"] = true;
  m["disable_bias_linear"] = true;
  return job;
}

std::map<int64_t, double> Train(const TempDir& dir, const std::string& cfg, const std::string& tag,
                                int world, const std::vector<std::string>& extra) {
  const std::string save = dir.File(tag);
  std::vector<std::string> sets = {"training.save=" + save};
  sets.insert(sets.end(), extra.begin(), extra.end());
  RanksResult r = RunRanks(dir, tag, world, cfg, sets, 300000);
  std::string why;
  EXPECT_TRUE(AllExitedZero(r, &why)) << tag << ": " << why;
  return LossPerIteration(save);
}

TEST(LlamaFamily, Qwen2ShapedTensorParallelTwoGivesTheOneRankLossesWithDropout) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), Qwen2Job(dir.path()));
  const auto one = Train(dir, cfg, "tp1", 1, {});
  const auto two = Train(dir, cfg, "tp2", 2, {"parallel.tensor_model_parallel_size=2"});
  ExpectSameLosses(one, two, 1, 20, "Qwen2-shaped TP 2");
  ASSERT_TRUE(one.count(1) && one.count(20));
  EXPECT_LT(one.at(20), one.at(1) - 0.3);  // it trains
}

TEST(LlamaFamily, LlamaShapedPipelineAndZero3GiveTheOneRankLosses) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), LlamaJob(dir.path()));
  const auto one = Train(dir, cfg, "one", 1, {});
  const auto pp = Train(dir, cfg, "pp2", 2, {"parallel.pipeline_model_parallel_size=2"});
  ExpectSameLosses(one, pp, 1, 20, "Llama-shaped PP 2");
  const auto z3 = Train(dir, cfg, "zero3", 2, {"zero_optimization.stage=3"});
  ExpectSameLosses(one, z3, 1, 20, "Llama-shaped ZeRO-3 DP 2");
}

TEST(LlamaFamily, ImportedTensorParallelCheckpointLoadsWithoutResharding) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = Qwen2Job(dir.path());
  job["model"]["vocab_size"] = 50304;  // the embedding's rows, beyond the tokenizer's 50257
  job["training"]["train_iters"] = 3;
  job["training"]["lr_warmup_iters"] = 1;
  job["training"]["save_interval"] = 3;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  // HF weights: a trained checkpoint exported by gpt-rank itself (fp32).
  Train(dir, cfg, "init", 1, {});
  auto ex = coord::testing::RunCommand(
      {GptRank(), "export-hf", "--load", dir.File("init"), "--out", dir.File("hf")});
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  std::map<int, std::map<int64_t, double>> losses;
  for (int tp : {1, 2}) {
    const std::string tag = "tp" + std::to_string(tp);
    json j = job;
    j["parallel"]["tensor_model_parallel_size"] = tp;
    const std::string jcfg = WriteJob(dir.File(tag + ".json"), j);
    auto im = coord::testing::RunCommand({GptRank(), "import-hf", "--hf", dir.File("hf"),
                                          "--config", jcfg, "--save", dir.File(tag)});
    ASSERT_EQ(im.exit_code, 0) << im.err;
    losses[tp] = Train(dir, jcfg, tag, tp, {"training.load=" + dir.File(tag)});
    const std::string log = coord::testing::ReadAll(dir.File(tag + "-rank0.log"));
    EXPECT_EQ(log.find("re-sharded"), std::string::npos) << log;
  }
  ExpectSameLosses(losses[1], losses[2], 1, 3, "imported at TP 1 vs TP 2");
}

}  // namespace
}  // namespace gpt_rank::e2e
