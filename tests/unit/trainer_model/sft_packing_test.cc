// Packing in the model: samples packed into one row (own position ids restarting at
// 0, segment ids confining attention) give the same loss and the same gradient as
// the same samples one per row, with loss weights on a subset of the tokens
// (supervised fine-tuning's assistant mask). Also: a token outside the weights has no
// effect, and the per-token options are refused where they cannot apply.
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/model/gpt.h"

namespace trainer {
namespace {

using testing::RelErr;

GptConfig TinyQwen(bool checkpoint) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.vocab_size = 100;
  c.make_vocab_size_divisible_by = 64;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.checkpoint_activations = checkpoint;
  c.normalization = Normalization::kRMSNorm;
  c.layernorm_epsilon = 1e-6f;
  c.position_embedding_type = PositionEmbedding::kRope;
  c.rotary_base = 1e6f;
  c.swiglu = true;
  c.ffn_hidden_size = 48;
  c.group_query_attention = true;
  c.num_query_groups = 2;
  c.add_bias_linear = false;
  c.add_qkv_bias = true;
  c.untie_embeddings_and_output_weights = true;
  return c;
}

struct Sample {
  std::vector<int> in, tg;
  std::vector<float> w;  // loss weight per position (0: masked)
};

// Three samples of 5, 4 and 6 positions; weights 1/N on a few of each sample's targets.
std::vector<Sample> Samples() {
  std::vector<Sample> s(3);
  const int lens[3] = {5, 4, 6};
  uint32_t x = 11;
  auto next = [&] { return static_cast<int>((x = x * 1664525u + 1013904223u) >> 8) % 100; };
  for (int k = 0; k < 3; ++k) {
    for (int t = 0; t < lens[k]; ++t) {
      s[k].in.push_back(next());
      s[k].tg.push_back(next());
      s[k].w.push_back(t >= 2 ? 1.0f : 0.0f);  // the "assistant" tail
    }
  }
  float n = 0;
  for (const Sample& a : s)
    for (float w : a.w) n += w;
  for (Sample& a : s)
    for (float& w : a.w) w /= n;
  return s;
}

struct Result {
  float loss;
  std::vector<float> grads;
};

Result RunModel(const GptConfig& c, int B, int T, const std::vector<int>& in,
                const std::vector<int>& tg, const StepOptions& o) {
  auto model = GptModel::Create(c, B, T);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  (*model)->InitMegatron(5);
  auto loss = (*model)->Forward(in.data(), tg.data(), B, T, o);
  EXPECT_TRUE(loss.ok()) << loss.status().ToString();
  EXPECT_TRUE((*model)->Backward(1.0f).ok());
  const float* g = (*model)->grad_data();
  return {*loss, std::vector<float>(g, g + (*model)->num_params())};
}

// One sample per row (padded to 6 with weight 0) vs all three packed in a row of 16
// (15 positions + 1 of padding), with and without activation checkpointing.
void ExpectPackedEqualsUnpacked(bool checkpoint) {
  const GptConfig c = TinyQwen(checkpoint);
  const std::vector<Sample> s = Samples();
  const int Tu = 6, Tp = 16;
  std::vector<int> in_u(3 * Tu, 0), tg_u(3 * Tu, 0);
  std::vector<float> w_u(3 * Tu, 0.0f);
  std::vector<int> in_p(Tp, 0), tg_p(Tp, 0), pos_p(Tp, 0), seg_p(Tp, 3);
  std::vector<float> w_p(Tp, 0.0f);
  int at = 0;
  for (int k = 0; k < 3; ++k) {
    for (size_t t = 0; t < s[k].in.size(); ++t, ++at) {
      in_u[k * Tu + t] = in_p[at] = s[k].in[t];
      tg_u[k * Tu + t] = tg_p[at] = s[k].tg[t];
      w_u[k * Tu + t] = w_p[at] = s[k].w[t];
      pos_p[at] = static_cast<int>(t);
      seg_p[at] = k;
    }
  }
  StepOptions unpacked;
  unpacked.loss_weights = w_u.data();
  StepOptions packed = unpacked;
  packed.loss_weights = w_p.data();
  packed.position_ids = pos_p.data();
  packed.segment_ids = seg_p.data();
  const Result u = RunModel(c, 3, Tu, in_u, tg_u, unpacked);
  const Result p = RunModel(c, 1, Tp, in_p, tg_p, packed);
  EXPECT_GT(u.loss, 0.0f);
  // The same per-token arithmetic; only the order of the sums over tokens (weight
  // gradients, the loss) differs: fp32 rounding, measured ~1e-7.
  EXPECT_NEAR(p.loss, u.loss, 1e-6 * u.loss);
  EXPECT_LT(RelErr(p.grads, u.grads), 1e-5);

  // Without segments and positions the packed row is a different computation
  // (samples see each other): the check above is not vacuous.
  StepOptions leaky;
  leaky.loss_weights = w_p.data();
  const Result l = RunModel(c, 1, Tp, in_p, tg_p, leaky);
  EXPECT_GT(std::abs(l.loss - u.loss), 1e-4 * u.loss);
}

TEST(SftPackingModelTest, PackedRowEqualsSamplesOnePerRow) { ExpectPackedEqualsUnpacked(false); }
TEST(SftPackingModelTest, PackedRowEqualsSamplesWithCheckpointing) {
  ExpectPackedEqualsUnpacked(true);
}

TEST(SftPackingModelTest, MaskedTargetsDoNotMatter) {
  // Changing a target whose weight is 0 changes neither loss nor gradient (bitwise).
  const GptConfig c = TinyQwen(false);
  const std::vector<Sample> s = Samples();
  StepOptions o;
  o.loss_weights = s[2].w.data();
  std::vector<int> tg = s[2].tg;
  const Result a = RunModel(c, 1, 6, s[2].in, tg, o);
  tg[0] = (tg[0] + 1) % 100;  // weight 0
  const Result b = RunModel(c, 1, 6, s[2].in, tg, o);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grads, b.grads);
  // The weighted loss is sum w_i CE_i: with w = 1/T it is the plain mean.
  std::vector<float> mean_w(6, 1.0f / 6);
  o.loss_weights = mean_w.data();
  const Result w = RunModel(c, 1, 6, s[2].in, tg, o);
  const Result plain = RunModel(c, 1, 6, s[2].in, tg, StepOptions{});
  EXPECT_NEAR(w.loss, plain.loss, 1e-6 * plain.loss);
  EXPECT_LT(RelErr(w.grads, plain.grads), 1e-6);
}

TEST(SftPackingModelTest, PositionIdsNeedRopeAndStayInRange) {
  GptConfig gpt2 = TinyQwen(false);
  gpt2.position_embedding_type = PositionEmbedding::kLearnedAbsolute;
  gpt2.normalization = Normalization::kLayerNorm;
  auto m = GptModel::Create(gpt2, 1, 4);
  ASSERT_TRUE(m.ok());
  std::vector<int> tok = {1, 2, 3, 4}, pos = {0, 1, 0, 1};
  StepOptions o;
  o.position_ids = pos.data();
  auto r = (*m)->Forward(tok.data(), tok.data(), 1, 4, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rope"), std::string::npos) << r.status().message();
  auto q = GptModel::Create(TinyQwen(false), 1, 4);
  ASSERT_TRUE(q.ok());
  pos = {0, 1, 2, 16};
  r = (*q)->Forward(tok.data(), tok.data(), 1, 4, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("position id 16"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace trainer
