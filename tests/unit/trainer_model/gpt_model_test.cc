// GptModel and its layouts: parameter counts (GPT-2 124M), the flat layer-major layout,
// Megatron init statistics, the memory plan, bitwise determinism, bitwise-identical
// gradients with checkpoint_activations (also with dropout on), gradient accumulation,
// a whole-model finite-difference check, and input validation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/model/gpt.h"

namespace trainer {
namespace {

GptConfig Tiny(bool checkpoint, float dropout) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.vocab_size = 100;
  c.make_vocab_size_divisible_by = 64;  // Vp = 128
  c.hidden_dropout = dropout;
  c.attention_dropout = dropout;
  c.checkpoint_activations = checkpoint;
  return c;
}

constexpr int kB = 3, kT = 16;

std::vector<int> Tokens(int n, int V, uint32_t seed) {
  std::vector<int> v(n);
  uint32_t x = seed;
  for (int& t : v) t = static_cast<int>((x = x * 1664525u + 1013904223u) >> 8) % V;
  return v;
}

// Forward + backward of one batch; returns (loss, grads).
std::pair<float, std::vector<float>> LossAndGrads(const GptConfig& c, uint64_t rng_step = 0) {
  auto model = GptModel::Create(c, kB, kT);
  EXPECT_TRUE(model.ok());
  (*model)->InitMegatron(7);
  auto in = Tokens(kB * kT, c.vocab_size, 1), tg = Tokens(kB * kT, c.vocab_size, 2);
  auto loss = (*model)->Forward(in.data(), tg.data(), kB, kT, StepOptions{true, rng_step});
  EXPECT_TRUE(loss.ok());
  EXPECT_TRUE((*model)->Backward(1.0f).ok());
  const float* g = (*model)->grad_data();
  return {*loss, std::vector<float>(g, g + (*model)->num_params())};
}

TEST(GptParamsTest, Gpt2SmallHasTheKnownParameterCount) {
  GptConfig c;  // defaults: GPT-2 124M, V = 50257 padded to 50304
  EXPECT_EQ(c.padded_vocab_size(), 50304);
  EXPECT_EQ(GptParamLayout(c).num_params(), 124475904u);  // llm.c's padded count
  c.tensor_model_parallel_size = 8;                       // Megatron pads to 128 * tp
  EXPECT_EQ(c.padded_vocab_size(), 51200);
}

TEST(GptParamsTest, LayoutIsContiguousLayerMajorWithDecayOnWeightsOnly) {
  GptConfig c = Tiny(false, 0.0f);
  GptParamLayout layout(c);
  size_t offset = 0;
  for (const ParamTensorInfo& t : layout.tensors()) {
    EXPECT_EQ(t.offset, offset) << t.name;
    offset += t.numel;
    const bool is_weight = t.shape.size() == 2;  // weights and embeddings
    EXPECT_EQ(t.weight_decay, is_weight) << t.name;
  }
  EXPECT_EQ(offset, layout.num_params());
  const size_t C = c.hidden_size;
  const size_t per_layer = 12 * C * C + 13 * C;
  for (int l = 0; l < c.num_layers; ++l) {
    EXPECT_EQ(layout.layer_end(l) - layout.layer_begin(l), per_layer);
    if (l > 0) {
      EXPECT_EQ(layout.layer_begin(l), layout.layer_end(l - 1));
    }
  }
  std::vector<float> buf(layout.num_params());
  GptParams p = layout.Views(buf.data());
  EXPECT_EQ(p.layers[1].ln1w, buf.data() + layout.layer_begin(1));
  EXPECT_EQ(p.lnfb + C, buf.data() + buf.size());
}

TEST(GptParamsTest, ValidationNamesTheProblem) {
  GptConfig c = Tiny(false, 0.0f);
  c.seq_length = 32;
  c.num_attention_heads = 5;
  coord::Status s = ValidateGptConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.seq_length (32) > model.max_position_embeddings (16)"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("divisible by model.num_attention_heads"), std::string::npos);
}

// Found by the checkpoint_model fuzzer: 42,753 layers passed and took seconds to lay out.
TEST(GptParamsTest, LayersAreBoundedBeforeAnythingIsSizedByThem) {
  GptConfig c = Tiny(false, 0.0f);
  c.num_layers = kMaxGptLayers;
  EXPECT_TRUE(ValidateGptConfig(c).ok()) << ValidateGptConfig(c).message();
  c.num_layers = 42753;
  coord::Status s = ValidateGptConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.num_layers: expected at most 1024"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("got 42753"), std::string::npos) << s.message();
}

TEST(GptParamsTest, MemoryPlanCheckpointingSavesActivations) {
  GptConfig c;  // GPT-2 124M at B=8, T=1024
  MemoryPlan plan = PlanMemory(c, 8, 1024);
  EXPECT_EQ(plan.param_bytes, 124475904u * 4);
  EXPECT_EQ(plan.optimizer_bytes, 2 * plan.param_bytes);
  EXPECT_LT(plan.activation_bytes_checkpointed, plan.activation_bytes / 3);
  EXPECT_LT(plan.total_bytes(true), plan.total_bytes(false));
  std::string text = FormatMemoryPlan(plan, true);
  EXPECT_NE(text.find("activations (ckpt)"), std::string::npos);
  std::printf("%s", text.c_str());
}

TEST(GptModelTest, MegatronInitStatistics) {
  GptConfig c = Tiny(false, 0.0f);
  c.hidden_size = 128;
  c.num_layers = 8;
  auto model = GptModel::Create(c, 1, 1);
  ASSERT_TRUE(model.ok());
  (*model)->InitMegatron(1);
  auto stddev = [](const float* p, size_t n) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) s += p[i], s2 += static_cast<double>(p[i]) * p[i];
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  const size_t C = c.hidden_size;
  const LayerParams& l0 = (*model)->params().layers[0];
  EXPECT_NEAR(stddev(l0.qkvw, 3 * C * C), 0.02, 0.001);
  EXPECT_NEAR(stddev(l0.fcw, 4 * C * C), 0.02, 0.001);
  EXPECT_NEAR(stddev(l0.attprojw, C * C), 0.02 / std::sqrt(16.0), 0.0005);
  EXPECT_NEAR(stddev(l0.fcprojw, 4 * C * C), 0.02 / std::sqrt(16.0), 0.0005);
  EXPECT_NEAR(stddev((*model)->params().wte, c.padded_vocab_size() * C), 0.02, 0.001);
  for (size_t i = 0; i < C; ++i) {
    ASSERT_EQ(l0.ln1w[i], 1.0f);
    ASSERT_EQ(l0.ln1b[i], 0.0f);
    ASSERT_EQ(l0.attprojb[i], 0.0f);
  }
}

TEST(GptModelTest, InitialLossIsNearLogV) {
  auto [loss, grads] = LossAndGrads(Tiny(false, 0.0f));
  EXPECT_NEAR(loss, std::log(100.0), 0.1);
}

TEST(GptModelTest, TwoRunsAreBitwiseIdentical) {
  for (float p : {0.0f, 0.1f}) {
    auto a = LossAndGrads(Tiny(false, p)), b = LossAndGrads(Tiny(false, p));
    EXPECT_EQ(a.first, b.first);
    EXPECT_TRUE(a.second == b.second) << "dropout " << p;
  }
}

TEST(GptModelTest, CheckpointActivationsGivesBitwiseIdenticalGradients) {
  for (float p : {0.0f, 0.1f}) {
    auto plain = LossAndGrads(Tiny(false, p), 5), ckpt = LossAndGrads(Tiny(true, p), 5);
    EXPECT_EQ(plain.first, ckpt.first) << "dropout " << p;
    EXPECT_TRUE(plain.second == ckpt.second) << "dropout " << p;
  }
}

TEST(GptModelTest, DropoutMasksFollowRngStepAndEvalTurnsThemOff) {
  auto s0 = LossAndGrads(Tiny(false, 0.1f), 0), s1 = LossAndGrads(Tiny(false, 0.1f), 1);
  EXPECT_NE(s0.first, s1.first);
  auto model = GptModel::Create(Tiny(false, 0.1f), kB, kT);
  auto nodrop = GptModel::Create(Tiny(false, 0.0f), kB, kT);
  (*model)->InitMegatron(7);
  (*nodrop)->InitMegatron(7);
  auto in = Tokens(kB * kT, 100, 1), tg = Tokens(kB * kT, 100, 2);
  auto eval = (*model)->Forward(in.data(), tg.data(), kB, kT, StepOptions{false, 0});
  auto ref = (*nodrop)->Forward(in.data(), tg.data(), kB, kT, StepOptions{true, 0});
  EXPECT_EQ(*eval, *ref);
}

TEST(GptModelTest, GradientAccumulationSumsScaledMicroBatches) {
  // One batch with scale 1 == the same batch twice with scale 1/2, up to the order of
  // fp32 additions into already non-zero gradients (so not bitwise).
  auto model = GptModel::Create(Tiny(false, 0.0f), kB, kT);
  (*model)->InitMegatron(7);
  auto in = Tokens(kB * kT, 100, 1), tg = Tokens(kB * kT, 100, 2);
  ASSERT_TRUE((*model)->Forward(in.data(), tg.data(), kB, kT, {}).ok());
  ASSERT_TRUE((*model)->Backward(1.0f).ok());
  std::vector<float> once((*model)->grad_data(), (*model)->grad_data() + (*model)->num_params());
  (*model)->ZeroGrad();
  for (int m = 0; m < 2; ++m) {
    ASSERT_TRUE((*model)->Forward(in.data(), tg.data(), kB, kT, {}).ok());
    ASSERT_TRUE((*model)->Backward(0.5f).ok());
  }
  std::vector<float> twice((*model)->grad_data(), (*model)->grad_data() + once.size());
  EXPECT_LT(testing::RelErr(twice, once), 1e-6);
}

TEST(GptModelTest, GradientMatchesFiniteDifferencesOnSampledParameters) {
  // fp32 central differences of the whole model on a few parameters of each kind;
  // h = 1e-2 keeps the fp32 rounding of the loss (~1e-7) far below the difference.
  GptConfig c = Tiny(false, 0.0f);
  auto model = GptModel::Create(c, kB, kT);
  (*model)->InitMegatron(7);
  auto in = Tokens(kB * kT, 100, 1), tg = Tokens(kB * kT, 100, 2);
  ASSERT_TRUE((*model)->Forward(in.data(), tg.data(), kB, kT, {}).ok());
  ASSERT_TRUE((*model)->Backward(1.0f).ok());
  std::vector<double> analytic, numeric;
  for (const ParamTensorInfo& t : (*model)->layout().tensors()) {
    for (size_t k : {size_t{0}, t.numel / 2, t.numel - 1}) {
      size_t i = t.offset + k;
      if (t.name == "wte" && k >= 100 * 32u) continue;  // padded rows: zero gradient
      float* p = (*model)->param_data() + i;
      const float saved = *p, h = 1e-2f;
      *p = saved + h;
      double fp = *(*model)->Forward(in.data(), tg.data(), kB, kT, {});
      *p = saved - h;
      double fm = *(*model)->Forward(in.data(), tg.data(), kB, kT, {});
      *p = saved;
      analytic.push_back((*model)->grad_data()[i]);
      numeric.push_back((fp - fm) / (2.0 * h));
    }
  }
  EXPECT_LT(testing::RelErr(analytic, numeric), 2e-2);
}

TEST(GptModelTest, RejectsBadInputs) {
  auto model = GptModel::Create(Tiny(false, 0.0f), kB, kT);
  ASSERT_TRUE(model.ok());
  std::vector<int> in(kB * kT, 0), tg(kB * kT, 0);
  tg[5] = 100;  // == V: a padded id, not a token
  auto loss = (*model)->Forward(in.data(), tg.data(), kB, kT, {});
  ASSERT_FALSE(loss.ok());
  EXPECT_NE(loss.status().message().find("token 5"), std::string::npos);
  EXPECT_FALSE((*model)->Forward(in.data(), tg.data(), kB + 1, kT, {}).ok());
  EXPECT_FALSE((*model)->Backward(1.0f).ok());  // no successful forward
  GptConfig bad = Tiny(false, 0.0f);
  bad.hidden_size = 30;
  EXPECT_FALSE(GptModel::Create(bad, 1, 1).ok());
  EXPECT_FALSE(GptModel::Create(Tiny(false, 0.0f), 1, 17).ok());  // > max_position_embeddings
}

}  // namespace
}  // namespace trainer
