// gpt-rank plan's arithmetic checked against independent formulas written out here
// (never against copied outputs): Megatron's parameter count and TP split, ZeRO's
// 16 bytes/param divided by tp*dp, Korthikanti's activation bytes, the CPU backend's
// buffers against gpt_params.h, DeepSpeed's estimators, and the fit verdicts.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/model/gpt_params.h"
#include "trainer/plan/plan.h"
#include "trainer/plan/plan_format.h"

namespace gpt_rank::plan {
namespace {

using json = nlohmann::json;

train::TrainerConfig Load(const std::string& name, int world, int local) {
  auto r = train::LoadTrainerConfig(std::string(COORD_SOURCE_DIR) + "/configs/" + name, {},
                                    world, local);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->config : train::TrainerConfig{};
}

GpuSpec Gpu(const std::string& name) { return *FindGpuSpec(name); }

TEST(PlanParamsTest, MegatronCountAndTensorParallelSplit) {
  trainer::GptConfig m;
  m.num_layers = 3;
  m.hidden_size = 64;
  m.num_attention_heads = 8;
  m.max_position_embeddings = 32;
  m.seq_length = 32;
  m.vocab_size = 1000;
  m.make_vocab_size_divisible_by = 128;
  const int64_t h = 64, L = 3, maxT = 32;
  ShardParams one = CountShardParams(m, 1, 1, 0);
  m.tensor_model_parallel_size = 1;
  EXPECT_EQ(one.model, static_cast<int64_t>(trainer::GptParamLayout(m).num_params()));
  EXPECT_EQ(one.shard, one.model);
  // TP 4: vocab padded to a multiple of 128 * 4 = 512 -> 1024; QKV/fc (w, b) and the two
  // projections' weights / 4; the two projection biases, LayerNorms and wpe whole.
  const int64_t t = 4, Vp = 1024;
  ShardParams four = CountShardParams(m, 4, 1, 0);
  EXPECT_EQ(four.model, Vp * h + maxT * h + L * (12 * h * h + 13 * h) + 2 * h);
  const int64_t layer = (3 * h * h + 3 * h + h * h + 4 * h * h + 4 * h + 4 * h * h) / t + 6 * h;
  EXPECT_EQ(four.layer, layer);
  EXPECT_EQ(four.shard, Vp * h / t + maxT * h + L * layer + 2 * h);
  // Persistent (threshold 100): per layer the six whole vectors of h = 64 (LN w/b x2, two
  // projection biases) and the sharded QKV (3h/4) and fc (4h/4) biases; lnf.
  EXPECT_EQ(CountShardParams(m, 4, 1, 100).persistent, L * (6 * h + 3 * h / t + 4 * h / t) + 2 * h);
}

TEST(PlanMemoryTest, Zero3ModelStatesAre16BytesPerParamOverTpTimesDp) {
  train::TrainerConfig c = Load("100B.json", 64, 8);
  train::ZeroConfig& z = c.parallel.zero;
  z.offload_optimizer.device = z.offload_param.device = "none";
  c.parallel.cpu_optimizer = false;
  z.stage3_param_persistence_threshold = 0;  // everything partitioned
  z.stage3_max_live_parameters = 0;
  z.stage3_prefetch_bucket_size = 0;
  const ClusterShape cluster{8, 8};
  const RankMemory r = PlanRankMemory(c, cluster, Gpu("v100-32gb"));
  const double states = r.params + r.grads + r.optimizer;
  const double P = static_cast<double>(CountShardParams(c.model, 8, 1, 0).shard);
  EXPECT_NEAR(states, 16.0 * P / 8, 16.0 * 8);  // ceil per partition
  // And P is the model over tp, up to the replicated LayerNorms, biases and wpe.
  const double N = static_cast<double>(CountShardParams(c.model, 8, 1, 0).model);
  EXPECT_NEAR(states / (16.0 * N / 64), 1.0, 0.01);
  // ZeRO-2: params and grads... grads and optimizer over dp, params whole.
  c.parallel.zero_stage = z.stage = 2;
  const RankMemory r2 = PlanRankMemory(c, cluster, Gpu("v100-32gb"));
  EXPECT_NEAR(r2.params, 2.0 * P, 1.0);
  EXPECT_NEAR(r2.grads + r2.optimizer, 14.0 * P / 8, 14.0 * 8);
}

TEST(PlanMemoryTest, KorthikantiPerLayerBytes) {
  trainer::GptConfig m;
  m.hidden_size = 4096;
  m.num_attention_heads = 32;
  m.seq_length = 1024;
  const double s = 1024, b = 6, h = 4096, a = 32;
  EXPECT_DOUBLE_EQ(LayerActivationBytes(m, 6, 1), s * b * h * (34 + 5 * a * s / h));
  EXPECT_DOUBLE_EQ(LayerActivationBytes(m, 6, 8), s * b * h * (10 + 24.0 / 8 + 5 * a * s / (h * 8)));
}

TEST(PlanMemoryTest, CpuBuffersMatchTheModelAtTp1AndShrinkWithTp) {
  trainer::GptConfig m;
  m.num_layers = 2;
  m.hidden_size = 64;
  m.num_attention_heads = 4;
  m.seq_length = 16;
  m.max_position_embeddings = 16;
  m.vocab_size = 500;
  for (bool ckpt : {false, true}) {
    EXPECT_EQ(CpuActivationFloats(m, 3, 16, 1, ckpt), trainer::ActivationFloats(m, 3, 16, ckpt));
  }
  EXPECT_EQ(CpuBackwardFloats(m, 3, 16, 1), trainer::GradActivationFloats(m, 3, 16));
  EXPECT_LT(CpuActivationFloats(m, 3, 16, 2, false), CpuActivationFloats(m, 3, 16, 1, false));
}

TEST(PlanMemoryTest, CpuBackendZero3PartitionFallsWithDp) {
  train::TrainerConfig c = Load("100B.json", 64, 8);
  c.training.device = "cpu";
  c.model.num_layers = 2;
  c.parallel.tensor_model_parallel_size = 2;
  c.parallel.zero.stage3_max_live_parameters = 0;
  c.parallel.zero.stage3_prefetch_bucket_size = 0;
  const GpuSpec gpu = Gpu("v100-32gb");
  const RankMemory dp2 = PlanRankMemory(c, ClusterShape{1, 4}, gpu);
  const RankMemory dp4 = PlanRankMemory(c, ClusterShape{1, 8}, gpu);
  const ShardParams sp = CountShardParams(c.model, 2, 1, c.parallel.zero.stage3_param_persistence_threshold);
  // trainer/train/zero3.h partitions the whole shard (persistent tensors included,
  // which are also kept whole in the window's replica).
  const double part2 = std::ceil(static_cast<double>(sp.shard) / 2);
  EXPECT_DOUBLE_EQ(dp2.params, 4.0 * part2);
  EXPECT_DOUBLE_EQ(dp2.grads, 4.0 * part2);
  EXPECT_DOUBLE_EQ(dp2.zero3_window, dp4.zero3_window);  // the window does not shrink with dp
  EXPECT_DOUBLE_EQ(dp2.optimizer, 8.0 * std::ceil(static_cast<double>(sp.shard) / 2));
  EXPECT_NEAR(dp4.params / dp2.params, 0.5, 1e-6);
  EXPECT_EQ(dp2.host_total, 0.0);
  const double acts = 4.0 * CpuActivationFloats(c.model, 6, 1024, 2, true);
  EXPECT_DOUBLE_EQ(dp2.activations, acts);
}

TEST(DeepSpeedEstimateTest, RecomputedFromTheirFormulas) {
  const double N = 96e9, L = 26214400;
  const int gpn = 8, nodes = 8;
  DeepSpeedEstimate off = EstimateZero3(N, L, gpn, nodes, true, false, true);
  EXPECT_DOUBLE_EQ(off.gpu_bytes, 4 * L + std::floor(2 * N / 64));
  EXPECT_DOUBLE_EQ(off.cpu_bytes_per_node, std::floor(N * 16.0 / nodes * 1.5));
  DeepSpeedEstimate both = EstimateZero3(N, L, gpn, nodes, true, true, true);
  EXPECT_DOUBLE_EQ(both.gpu_bytes, 4 * L);
  EXPECT_DOUBLE_EQ(both.cpu_bytes_per_node, std::floor(N * 18.0 / nodes * 1.5));
  DeepSpeedEstimate cold = EstimateZero3(N, L, gpn, nodes, true, true, false);
  EXPECT_DOUBLE_EQ(cold.cpu_bytes_per_node, std::floor(N * std::max(32.0, 18.0 / 8) * 1.5));
  DeepSpeedEstimate none = EstimateZero3(N, L, gpn, nodes, false, false, true);
  EXPECT_DOUBLE_EQ(none.gpu_bytes, 4 * L + std::floor(18 * N / 64));
  EXPECT_DOUBLE_EQ(none.cpu_bytes_per_node, L * 4 * gpn * 1.5);
  const double n2 = 1.29e9;
  EXPECT_DOUBLE_EQ(EstimateZero2(n2, 1, 8, false).gpu_bytes, 4 * n2 + std::floor(16 * n2 / 8));
  EXPECT_DOUBLE_EQ(EstimateZero2(n2, 1, 8, false).cpu_bytes_per_node, n2 * 4 * 1 * 1.5);
  EXPECT_DOUBLE_EQ(EstimateZero2(n2, 1, 8, true).gpu_bytes, 2 * n2);
  // max(4 * total_gpus, 16) bytes per parameter on each node's CPU.
  EXPECT_DOUBLE_EQ(EstimateZero2(n2, 1, 8, true).cpu_bytes_per_node, n2 * 32 * 1.5);
  EXPECT_DOUBLE_EQ(EstimateZero2(n2, 1, 2, true).cpu_bytes_per_node, n2 * 16 * 1.5);
}

TEST(PlanTest, ShippedConfigsFitOnV100AndH100) {
  for (const char* name : {"10B.json", "100B.json"}) {
    const train::TrainerConfig c = Load(name, 64, 8);
    for (const char* gpu : {"v100-32gb", "h100-80gb"}) {
      const Plan p = MakePlan(c, ClusterShape{8, 8}, Gpu(gpu));
      EXPECT_TRUE(p.fits()) << name << " on " << gpu << "\n" << FormatPlanText(p, c);
      EXPECT_GE(p.largest_micro_batch, 6) << name << " on " << gpu;
      EXPECT_GT(p.time.total, p.time.compute);
      EXPECT_TRUE(p.has_deepspeed_estimate);
    }
  }
}

// DeepSpeed issue 912: about 220 GB of host memory per node for 100B on 8x8 V100, model
// parallel 8, ZeRO-3 with the optimizer and the parameters offloaded: 16 + 2 bytes per
// parameter over the node's 1/8 of the model.
TEST(PlanTest, HostMemoryOf100BMatchesDeepSpeedIssue912) {
  train::TrainerConfig c = Load("100B.json", 64, 8);
  c.activation_checkpointing.cpu_checkpointing = false;  // issue 912 names none
  const Plan p = MakePlan(c, ClusterShape{8, 8}, Gpu("v100-32gb"));
  const double N = static_cast<double>(p.params.model);
  EXPECT_NEAR(p.host_per_node / (18.0 * N / 8), 1.0, 0.01);
  EXPECT_NEAR(p.host_per_node / 220e9, 1.0, 0.10);
}

TEST(PlanTest, OverflowNamesTheResourceAndWhatToChange) {
  train::TrainerConfig c = Load("100B.json", 64, 8);
  c.parallel.zero_stage = c.parallel.zero.stage = 2;
  c.parallel.cpu_optimizer = false;
  c.parallel.zero.offload_optimizer.device = c.parallel.zero.offload_param.device = "none";
  Plan p = MakePlan(c, ClusterShape{8, 8}, Gpu("v100-32gb"));
  EXPECT_FALSE(p.fits_device);
  ASSERT_FALSE(p.advice.empty());
  EXPECT_NE(p.advice[0].find("GPU memory overflows"), std::string::npos) << p.advice[0];
  const std::string text = FormatPlanText(p, c);
  EXPECT_NE(text.find("DOES NOT FIT"), std::string::npos);
  EXPECT_NE(text.find("raise zero_optimization.stage"), std::string::npos) << text;
  EXPECT_NE(text.find("offload the optimizer"), std::string::npos) << text;

  train::TrainerConfig h = Load("100B.json", 64, 8);
  Plan host = MakePlan(h, ClusterShape{8, 8}, Gpu("v100-32gb"), 128.0 * (1 << 30));
  EXPECT_TRUE(host.fits_device);
  EXPECT_FALSE(host.fits_host);
  bool named = false;
  for (const std::string& a : host.advice) named |= a.find("host memory overflows") == 0;
  EXPECT_TRUE(named);

  train::TrainerConfig a = Load("10B.json", 64, 8);
  a.model.checkpoint_activations = false;
  a.training.micro_batch_size = 16;
  a.training.global_batch_size = 128;
  Plan acts = MakePlan(a, ClusterShape{8, 8}, Gpu("v100-32gb"));
  EXPECT_FALSE(acts.fits_device);
  const std::string t = FormatPlanText(acts, a);
  EXPECT_NE(t.find("turn on training.checkpoint_activations"), std::string::npos) << t;
  EXPECT_NE(t.find("lower training.micro_batch_size to"), std::string::npos) << t;
}

TEST(PlanTest, JsonHasTheSameFigures) {
  const train::TrainerConfig c = Load("100B.json", 64, 8);
  const Plan p = MakePlan(c, ClusterShape{8, 8}, Gpu("h100-80gb"));
  const json j = json::parse(PlanToJson(p, c).dump());
  EXPECT_EQ(j["cluster"]["dp"], 8);
  EXPECT_EQ(j["parameters"]["model"], p.params.model);
  EXPECT_DOUBLE_EQ(j["per_rank_bytes"]["total"].get<double>(), p.rank.device_total);
  EXPECT_DOUBLE_EQ(j["per_node_bytes"]["host_total"].get<double>(), p.host_per_node);
  EXPECT_EQ(j["fits"]["all"], true);
  EXPECT_EQ(j["deepspeed_estimate"]["function"], "estimate_zero3_model_states_mem_needs");
}

TEST(PlanTest, UnknownGpuListsTheTable) {
  auto g = FindGpuSpec("k80");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("v100-32gb, a100-40gb, a100-80gb, h100-80gb"),
            std::string::npos);
}

}  // namespace
}  // namespace gpt_rank::plan
