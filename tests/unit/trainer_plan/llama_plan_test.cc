// gpt-rank plan for the Llama / Qwen2 family: the parameter count of the ready configs
// equals Hugging Face's published one (Qwen2.5-7B 7,615,616,512; Qwen2.5-0.5B
// 494,032,768 plus its padded vocabulary rows), the plan's per-shard counts and CPU
// buffers equal the real layouts' (GptParamLayout, ActivationFloats) for GQA, SwiGLU,
// RMSNorm, rope and untied output at every TP rank and pipeline stage, Korthikanti's
// activation formula reduces to GPT-2's and grows as written for SwiGLU, and the two
// ready configs validate for their launch world and plan (7B on 8 GPUs with TP and
// ZeRO; the CUDA backend's refusal of the family is what `plan` reports).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/job_spec.h"
#include "trainer/model/gpt_params.h"
#include "trainer/plan/plan.h"
#include "trainer/plan/plan_format.h"

namespace gpt_rank::plan {
namespace {

std::string ConfigPath(const std::string& name) {
  return std::string(COORD_SOURCE_DIR) + "/configs/" + name + ".json";
}

ClusterShape LaunchCluster(const std::string& name) {
  std::ifstream in(ConfigPath(name));
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str());
  ClusterShape c;
  c.gpus_per_node = j["launch"]["nproc_per_node"].get<int>();
  c.nodes = j["launch"].value("nnodes", 1);
  return c;
}

train::TrainerConfig Load(const std::string& name) {
  const ClusterShape cluster = LaunchCluster(name);
  auto r = train::LoadTrainerConfig(ConfigPath(name), {}, cluster.world_size(),
                                    cluster.gpus_per_node);
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  if (r.ok()) {
    EXPECT_TRUE(r->warnings.empty()) << name << ": " << r->warnings[0];
  }
  return r.ok() ? r->config : train::TrainerConfig{};
}

trainer::GptConfig TinyFamily(bool gqa, bool tied, bool qkv_bias) {
  trainer::GptConfig c;
  c.num_layers = 4;
  c.hidden_size = 64;
  c.num_attention_heads = 8;
  c.group_query_attention = gqa;
  c.num_query_groups = 2;
  c.ffn_hidden_size = 96;
  c.seq_length = c.max_position_embeddings = 32;
  c.vocab_size = 300;
  c.normalization = trainer::Normalization::kRMSNorm;
  c.position_embedding_type = trainer::PositionEmbedding::kRope;
  c.swiglu = true;
  c.add_bias_linear = false;
  c.add_qkv_bias = qkv_bias;
  c.untie_embeddings_and_output_weights = !tied;
  return c;
}

TEST(LlamaPlanTest, ReadyConfigsHaveHuggingFacesParameterCounts) {
  const train::TrainerConfig big = Load("qwen2.5-7b-8xgpu");
  EXPECT_EQ(CountShardParams(big.model, 1, 1, 0).model, 7615616512);
  const train::TrainerConfig small = Load("qwen2.5-0.5b");
  trainer::GptConfig m = small.model;
  m.tensor_model_parallel_size = 1;
  const int64_t padding = static_cast<int64_t>(m.padded_vocab_size() - m.vocab_size) * 896;
  EXPECT_EQ(CountShardParams(small.model, 1, 1, 0).model, 494032768 + padding);
  // The real layout agrees.
  EXPECT_EQ(static_cast<int64_t>(trainer::GptParamLayout(m).num_params()),
            494032768 + padding);
}

TEST(LlamaPlanTest, ShardCountsAndCpuBuffersEqualTheRealLayouts) {
  for (bool gqa : {false, true}) {
    for (bool tied : {false, true}) {
      const trainer::GptConfig base = TinyFamily(gqa, tied, /*qkv_bias=*/gqa);
      for (int tp : {1, 2}) {
        for (int pp : {1, 2}) {
          trainer::GptConfig c = base;
          c.tensor_model_parallel_size = tp;
          for (int stage = 0; stage < pp; ++stage) {
            const trainer::GptParamLayout layout(
                c, tp, 0, trainer::ModelPart::PipelineStage(c.num_layers, pp, 1, stage));
            const ShardParams sp = CountShardParams(base, tp, pp, 0, stage);
            EXPECT_EQ(sp.shard, static_cast<int64_t>(layout.num_params()))
                << "gqa " << gqa << " tied " << tied << " tp " << tp << " pp " << pp << " stage "
                << stage;
          }
        }
        // The CPU backend's buffers, as the model allocates them (tp 1: its own counts).
        if (tp == 1) {
          for (bool ckpt : {false, true}) {
            EXPECT_EQ(CpuActivationFloats(base, 3, 16, 1, ckpt),
                      trainer::ActivationFloats(base, 3, 16, ckpt));
          }
          EXPECT_EQ(CpuBackwardFloats(base, 3, 16, 1), trainer::GradActivationFloats(base, 3, 16));
        }
        EXPECT_EQ(CpuBackwardFloats(base, 3, 16, tp),
                  trainer::GradActivationFloats(base, 3, 16, tp));
      }
    }
  }
}

TEST(LlamaPlanTest, ActivationFormulaIsKorthikantisForGpt2AndCountsSwigluAndGqa) {
  trainer::GptConfig gpt;  // GPT-2 defaults: 10 + 24/t + 5 a s / (h t)
  gpt.hidden_size = 1024;
  gpt.num_attention_heads = 16;
  gpt.seq_length = 2048;
  const double s = 2048, b = 2, h = 1024, a = 16;
  for (int t : {1, 2, 4}) {
    EXPECT_DOUBLE_EQ(LayerActivationBytes(gpt, 2, t),
                     s * b * h * (10.0 + 24.0 / t + 5.0 * a * s / (h * t)));
  }
  // SwiGLU with F = 2816 and 4 KV groups of 16 heads: Q, K 2 (1 + 1/4), V 2/4, proj 2,
  // [gate | up] 2 * 2F/h, silu(gate) * up 2 F/h.
  trainer::GptConfig llama = gpt;
  llama.swiglu = true;
  llama.ffn_hidden_size = 2816;
  llama.group_query_attention = true;
  llama.num_query_groups = 4;
  const double split = 2.5 + 0.5 + 2.0 + 4.0 * 2816 / h + 2.0 * 2816 / h;
  EXPECT_DOUBLE_EQ(LayerActivationBytes(llama, 2, 2),
                   s * b * h * (10.0 + split / 2 + 5.0 * a * s / (h * 2)));
}

TEST(LlamaPlanTest, ReadyConfigsValidateAndPlan) {
  for (const char* name : {"qwen2.5-0.5b", "qwen2.5-7b-8xgpu"}) {
    auto spec = coord::LoadJobSpec(ConfigPath(name));
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status().ToString();
    EXPECT_TRUE(spec->warnings.empty()) << name << ": " << spec->warnings[0];
  }
  // 7B on one node of 8 GPUs: TP 4 (one KV group per rank) x DP 2, ZeRO-1, bf16.
  const train::TrainerConfig big = Load("qwen2.5-7b-8xgpu");
  EXPECT_EQ(big.parallel.tensor_model_parallel_size, 4);
  EXPECT_EQ(big.parallel.data_parallel_size(), 2);
  EXPECT_GE(big.parallel.zero_stage, 1);
  EXPECT_EQ(big.parallel.precision, "bf16");
  const Plan plan = MakePlan(big, LaunchCluster("qwen2.5-7b-8xgpu"), *FindGpuSpec("a100-80gb"));
  EXPECT_TRUE(plan.fits()) << FormatPlanText(plan, big);
  // The 4 TP shards hold the model once and the replicated norms (2 per layer, the
  // final one) 4 times.
  EXPECT_EQ(plan.params.shard * 4 - plan.params.model, 3 * (28 * 2 * 3584 + 3584));
  EXPECT_GT(plan.time.tokens_per_s, 0);
  const coord::Status trainable = train::CheckTrainable(big);
  EXPECT_FALSE(trainable.ok());
  EXPECT_NE(trainable.message().find("training.device \"cuda\" runs the GPT-2 architecture only"),
            std::string::npos);
  // 0.5B on the CPU backend: 4 ranks, TP 2 x DP 2.
  const train::TrainerConfig small = Load("qwen2.5-0.5b");
  EXPECT_EQ(small.training.device, "cpu");
  EXPECT_TRUE(train::CheckTrainable(small).ok());
  const Plan p = MakePlan(small, LaunchCluster("qwen2.5-0.5b"), *FindGpuSpec("a100-40gb"));
  EXPECT_TRUE(p.fits()) << FormatPlanText(p, small);
}

}  // namespace
}  // namespace gpt_rank::plan
