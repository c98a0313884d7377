// gpt-rank plan with pipeline parallel, checked against formulas written out here:
// Megatron's warmup counts and Korthikanti's first-stage activations, the bubble
// (p-1)/(m v), per-stage parameters (embedding first, LayerNorm + tied wte copy last),
// the time model's bubble and p2p terms, the ready configs in configs/ (each validates
// for its launch world and plans on A100 40GB), and the published training times.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "common/job_spec.h"
#include "trainer/plan/pipeline_schedule.h"
#include "trainer/plan/plan.h"
#include "trainer/plan/plan_format.h"

namespace gpt_rank::plan {
namespace {

using json = nlohmann::json;

std::string ConfigPath(const std::string& name) {
  return std::string(COORD_SOURCE_DIR) + "/configs/" + name + ".json";
}

// The cluster a ready config expects: launch.nnodes x launch.nproc_per_node.
ClusterShape LaunchCluster(const std::string& name) {
  std::ifstream in(ConfigPath(name));
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str());
  ClusterShape c;
  c.gpus_per_node = j["launch"]["nproc_per_node"].get<int>();
  c.nodes = j["launch"].value("nnodes", 1);
  return c;
}

train::TrainerConfig LoadReady(const std::string& name, const ClusterShape& cluster) {
  auto r =
      train::LoadTrainerConfig(ConfigPath(name), {}, cluster.world_size(), cluster.gpus_per_node);
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  if (r.ok()) {
    EXPECT_TRUE(r->warnings.empty()) << name << ": " << r->warnings[0];
  }
  return r.ok() ? r->config : train::TrainerConfig{};
}

GpuSpec Gpu(const std::string& name) { return *FindGpuSpec(name); }

// ---------------------------------------------------------------------------
// The schedule

TEST(PipelineScheduleTest, OneFOneBHoldsPpMinusRankMicroBatches) {
  // schedules.py: warmup min(pp - rank - 1, m), then one more forward before the first
  // backward; with fewer micro-batches than stages, all of them.
  for (int pp : {2, 4, 8}) {
    for (int64_t m : {1, 2, 4, 64}) {
      for (int r = 0; r < pp; ++r) {
        EXPECT_EQ(WarmupMicroBatches(pp, 1, m, r), std::min<int64_t>(pp - r - 1, m));
        EXPECT_EQ(InFlightMicroBatches(pp, 1, m, r), std::min<int64_t>(pp - r, m))
            << "pp " << pp << " m " << m << " rank " << r;
      }
    }
  }
}

TEST(PipelineScheduleTest, InterleavedFirstStageMatchesKorthikanti) {
  // Korthikanti et al. 2022, sec. 4.2.3: the first stage holds L (1 + (p-1)/(p v)) layers'
  // activations under the interleaved schedule; each chunk micro-batch is L/(p v) layers.
  const int L = 48;
  for (int pp : {2, 4, 8}) {
    for (int vpp : {2, 3}) {
      const int64_t m = 4 * pp;  // more than pp, a multiple of pp
      const double layers = InFlightMicroBatches(pp, vpp, m, 0) * double(L) / (pp * vpp);
      EXPECT_DOUBLE_EQ(layers, L * (1.0 + (pp - 1.0) / (pp * vpp))) << pp << " x " << vpp;
      // The last stage: (vpp - 1) pp warmup chunks + 1.
      EXPECT_EQ(InFlightMicroBatches(pp, vpp, m, pp - 1), (vpp - 1) * pp + 1);
    }
  }
  // m == pp: schedules.py runs every forward first, all m v chunks in flight.
  EXPECT_EQ(InFlightMicroBatches(4, 2, 4, 0), 8);
  EXPECT_EQ(InFlightMicroBatches(4, 2, 4, 3), 8);
}

TEST(PipelineScheduleTest, BubbleIsPMinusOneOverMV) {
  EXPECT_DOUBLE_EQ(BubbleFraction(1, 1, 8), 0.0);
  EXPECT_DOUBLE_EQ(BubbleFraction(4, 1, 8), 3.0 / 8);
  EXPECT_DOUBLE_EQ(BubbleFraction(4, 2, 8), 3.0 / 16);
  EXPECT_DOUBLE_EQ(BubbleFraction(8, 1, 256), 7.0 / 256);
}

// ---------------------------------------------------------------------------
// Parameters and memory per stage

TEST(PipelinePlanTest, StagesSplitLayersEmbeddingFirstHeadLast) {
  trainer::GptConfig m;
  m.num_layers = 8;
  m.hidden_size = 64;
  m.num_attention_heads = 4;
  m.max_position_embeddings = 32;
  m.seq_length = 32;
  m.vocab_size = 1000;  // padded to 1024
  const int64_t h = 64, Vp = 1024, maxT = 32, layer = 12 * h * h + 13 * h;
  const int pp = 4;
  int64_t sum = 0;
  for (int r = 0; r < pp; ++r) {
    const ShardParams s = CountShardParams(m, 1, pp, 0, r);
    EXPECT_EQ(s.layers, 2);
    EXPECT_EQ(s.model, Vp * h + maxT * h + 8 * layer + 2 * h);
    int64_t want = 2 * layer;
    if (r == 0) want += Vp * h + maxT * h;    // wte, wpe
    if (r == pp - 1) want += 2 * h + Vp * h;  // final LayerNorm, the tied wte's copy
    EXPECT_EQ(s.shard, want) << "stage " << r;
    sum += s.shard;
  }
  EXPECT_EQ(sum, CountShardParams(m, 1, 1, 0).model + Vp * h);  // the model + one wte copy
}

TEST(PipelinePlanTest, FirstStageHoldsTheWholeModelsActivationsAndTheLastTheLogits) {
  const ClusterShape cluster = LaunchCluster("gpt-1.3b-4xdp-4xpp");
  const train::TrainerConfig c = LoadReady("gpt-1.3b-4xdp-4xpp", cluster);
  const GpuSpec gpu = Gpu("a100-40gb");
  const double one_layer = LayerActivationBytes(c.model, 2, 1);  // micro-batch 2, bf16
  const int pp = 4, L = 24;
  for (int r = 0; r < pp; ++r) {
    const RankMemory s = PlanRankMemory(c, cluster, gpu, 0, r);
    EXPECT_EQ(s.in_flight, pp - r);
    EXPECT_DOUBLE_EQ(s.layers_held, (pp - r) * L / pp);
    EXPECT_DOUBLE_EQ(s.activations, (pp - r) * (L / pp) * one_layer);
    const double logits = 4.0 * 2048 * 2 * 50304;  // fp32 s b V on the last stage only
    EXPECT_DOUBLE_EQ(s.logits, r == pp - 1 ? logits : 0.0);
  }
  // Korthikanti sec. 4.2.3: under 1F1B the first stage holds all L layers of one
  // micro-batch, as much as the model without PP.
  EXPECT_DOUBLE_EQ(PlanRankMemory(c, cluster, gpu, 0, 0).activations, L * one_layer);
  const Plan p = MakePlan(c, cluster, gpu);
  EXPECT_EQ(p.worst_stage, 0);
  ASSERT_EQ(p.stages.size(), 4u);
  EXPECT_DOUBLE_EQ(p.rank.device_total, p.stages[0].device_total);
  const std::string text = FormatPlanText(p, c);
  EXPECT_NE(text.find("stage 3  layers 18-23 + final LN, tied wte, loss"), std::string::npos)
      << text;
  EXPECT_NE(text.find("<- planned"), std::string::npos);
}

TEST(PipelinePlanTest, InterleavingRaisesFirstStageActivationsAndCutsTheBubble) {
  const ClusterShape cluster = LaunchCluster("gpt-1.3b-4xdp-4xpp");
  train::TrainerConfig c = LoadReady("gpt-1.3b-4xdp-4xpp", cluster);
  const GpuSpec gpu = Gpu("a100-40gb");
  const Plan plain = MakePlan(c, cluster, gpu);
  c.parallel.virtual_pipeline_model_parallel_size = 2;  // 3 layers per chunk
  const Plan inter = MakePlan(c, cluster, gpu);
  const double L = 24, p = 4, v = 2;
  EXPECT_DOUBLE_EQ(inter.stages[0].layers_held, L * (1 + (p - 1) / (p * v)));
  EXPECT_DOUBLE_EQ(inter.time.bubble_fraction, plain.time.bubble_fraction / 2);
  EXPECT_DOUBLE_EQ(plain.time.bubble_fraction, 3.0 / 64);
  // Twice the sends: each micro-batch crosses every stage boundary once per chunk.
  EXPECT_DOUBLE_EQ(inter.time.pp_p2p, 2 * plain.time.pp_p2p);
}

// ---------------------------------------------------------------------------
// Time

TEST(PipelinePlanTest, IterationTimeIsBusyTimesOnePlusBubblePlusTheRest) {
  const ClusterShape cluster = LaunchCluster("gpt-13b-4xdp-8xpp");
  const train::TrainerConfig c = LoadReady("gpt-13b-4xdp-8xpp", cluster);
  const GpuSpec gpu = Gpu("a100-40gb");
  const IterationTime t = PlanIterationTime(c, cluster, gpu);
  EXPECT_EQ(t.micro_batches, 1024 / (1 * 4));
  EXPECT_DOUBLE_EQ(t.bubble_fraction, 7.0 / 256);
  const double busy = t.compute + t.tp_comm + t.pp_p2p;
  EXPECT_NEAR(t.bubble, busy * 7.0 / 256, 1e-9);
  EXPECT_GE(t.total, busy * (1 + 7.0 / 256) + t.embedding_sync - 1e-9);
  EXPECT_EQ(t.slowest_stage, 7);  // the last stage also runs the output layer
  // 32 GPUs on 4 nodes: the pipeline crosses nodes; each micro-batch sends s b h p each
  // way over the node's network shared by its 8 GPUs.
  EXPECT_TRUE(t.pp_across_nodes);
  const double network = gpu.node_network_bytes_s / 8 * kLinkEfficiency;
  EXPECT_NEAR(t.pp_p2p, 256 * 2 * (2048.0 * 1 * 5120 * 2) / network, 1e-9);
  // The tied wte's gradient between the first and last stage: p V h bytes.
  EXPECT_NEAR(t.embedding_sync, 2.0 * 50304 * 5120 / network, 1e-9);
  // The last stage's GEMM FLOPs: its 5 layers (recomputed: 8 per param, 16 s h) and the
  // output layer's 6 V h, per token of this DP rank.
  const double h = 5120, s = 2048, tokens = 256 * 2048.0;
  const double layer = 8 * (12 * h * h + 13 * h) + 16 * s * h;
  EXPECT_NEAR(t.flops_per_gpu / (tokens * (5 * layer + 6 * 50304 * h)), 1.0, 1e-12);
}

TEST(PipelinePlanTest, ModelFlopsAreMegatronsFormula) {
  // Narayanan et al. 2021: 72 B s L h^2 (1 + s/(6h) + V/(12 h L)) per iteration without
  // recomputation, i.e. per token 72 L h^2 (1 + s/(6h) + V/(12 h L)); ours also counts
  // the biases, LayerNorms and wpe (6 per parameter), a fraction of a percent more.
  const train::TrainerConfig c = LoadReady("gpt-1.3b-4xdp", LaunchCluster("gpt-1.3b-4xdp"));
  const double L = 24, h = 2048, s = 2048, V = 50304;
  const double megatron = 72 * L * h * h * (1 + s / (6 * h) + V / (12 * h * L));
  EXPECT_NEAR(ModelFlopsPerToken(c.model) / megatron, 1.0, 0.005);
}

// ---------------------------------------------------------------------------
// The ready configs and the published table

const char* const kReady[] = {"gpt-125m",          "gpt-125m-2xdp",     "gpt-125m-4xdp",
                              "gpt-1.3b-4xdp",     "gpt-1.3b-8xdp",     "gpt-1.3b-4xdp-4xpp",
                              "gpt-13b-4xdp-4xpp", "gpt-13b-4xdp-8xpp", "gpt-13b-4xdp-4xpp-4xtp"};

TEST(ReadyConfigsTest, EachValidatesForItsWorldAndFitsAnA100_40GB) {
  for (const char* name : kReady) {
    auto spec = coord::LoadJobSpec(ConfigPath(name));
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status().ToString();
    EXPECT_TRUE(spec->warnings.empty()) << name << ": " << spec->warnings[0];
    const ClusterShape cluster = LaunchCluster(name);
    const train::TrainerConfig c = LoadReady(name, cluster);
    EXPECT_EQ(c.training.device, "cuda") << name;
    EXPECT_EQ(c.parallel.precision, "bf16") << name;
    EXPECT_EQ(c.model.seq_length, 2048) << name;
    EXPECT_TRUE(train::CheckTrainable(c).ok()) << name;
    const int tp = c.parallel.tensor_model_parallel_size,
              pp = c.parallel.pipeline_model_parallel_size;
    EXPECT_EQ(c.parallel.data_parallel_size() * tp * pp, cluster.world_size()) << name;
    const Plan p = MakePlan(c, cluster, Gpu("a100-40gb"));
    EXPECT_TRUE(p.fits()) << name << "\n" << FormatPlanText(p, c);
    EXPECT_GE(p.largest_micro_batch, c.training.micro_batch_size) << name;
    EXPECT_EQ(static_cast<int>(p.stages.size()), pp) << name;
    EXPECT_GT(p.train_time_s, 0) << name;
  }
}

// The platform's table (A100 40GB): 125M on 2.5B tokens about 8 h on 1 GPU, 4 h on 2,
// 2 h on 4; 1.3B on 26B tokens about 8 days on 4, 4 days on 8. One model for every row,
// within 30%.
TEST(ReadyConfigsTest, TrainingTimesWithin30PercentOfThePublishedTable) {
  struct Row {
    const char* name;
    double tokens, published_s;
  };
  const double hour = 3600, day = 86400;
  for (const Row& row : {Row{"gpt-125m", 2.5e9, 8 * hour}, Row{"gpt-125m-2xdp", 2.5e9, 4 * hour},
                         Row{"gpt-125m-4xdp", 2.5e9, 2 * hour}, Row{"gpt-1.3b-4xdp", 26e9, 8 * day},
                         Row{"gpt-1.3b-8xdp", 26e9, 4 * day}}) {
    const ClusterShape cluster = LaunchCluster(row.name);
    const train::TrainerConfig c = LoadReady(row.name, cluster);
    const Plan p = MakePlan(c, cluster, Gpu("a100-40gb"), 0, row.tokens);
    EXPECT_TRUE(p.train_tokens_given);
    EXPECT_DOUBLE_EQ(p.train_time_s, row.tokens / p.time.tokens_per_s);
    EXPECT_NEAR(p.train_time_s / row.published_s, 1.0, 0.30) << row.name;
  }
}

TEST(ReadyConfigsTest, SmallModelsReachALowerMfu) {
  // The elementwise ops' share of the time grows as h shrinks (34 s b h + 5 a s^2 b bytes
  // per layer against 72 s b h^2 FLOPs), as MosaicML's measured MFU falls with model size.
  const ClusterShape c125 = LaunchCluster("gpt-125m"), c13 = LaunchCluster("gpt-1.3b-8xdp");
  const Plan small = MakePlan(LoadReady("gpt-125m", c125), c125, Gpu("a100-40gb"));
  const Plan big = MakePlan(LoadReady("gpt-1.3b-8xdp", c13), c13, Gpu("a100-40gb"));
  EXPECT_LT(small.time.mfu, big.time.mfu);
  EXPECT_LT(big.time.mfu, kAchievableFlopsFraction);
}

TEST(ReadyConfigsTest, JsonCarriesStagesBubbleAndTrainingTime) {
  const ClusterShape cluster = LaunchCluster("gpt-13b-4xdp-4xpp");
  const train::TrainerConfig c = LoadReady("gpt-13b-4xdp-4xpp", cluster);
  const Plan p = MakePlan(c, cluster, Gpu("a100-40gb"), 0, 26e9);
  const json j = json::parse(PlanToJson(p, c).dump());
  EXPECT_EQ(j["pipeline"]["schedule"], "1f1b");
  EXPECT_EQ(j["pipeline"]["micro_batches"], 256);
  EXPECT_EQ(j["pipeline"]["stages_bytes"].size(), 4u);
  EXPECT_DOUBLE_EQ(j["time_s"]["bubble_fraction"].get<double>(), 3.0 / 256);
  EXPECT_DOUBLE_EQ(j["training"]["tokens"].get<double>(), 26e9);
  EXPECT_EQ(j["training"]["tokens_from"], "--train-tokens");
  EXPECT_DOUBLE_EQ(j["training"]["days"].get<double>(), p.train_time_s / 86400);
  EXPECT_DOUBLE_EQ(j["per_rank_bytes"]["total"].get<double>(),
                   j["pipeline"]["stages_bytes"][p.worst_stage]["total"].get<double>());
}

}  // namespace
}  // namespace gpt_rank::plan
