// Generation with the KV cache (GenerateWithCache) against re-running the window every
// token (GenerateTokens): greedy gives the same ids token for token, and seeded
// sampling the same draws, for a GPT-2 and a Qwen2-shaped tiny model (RMSNorm, RoPE,
// grouped-query attention, SwiGLU, q/k/v biases) and a Llama-shaped untied one; top-p;
// stop tokens; refused requests. Weights use init std 0.5 so distributions are peaky
// and greedy near-ties (where rounding could pick the other id) are implausible.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/model/generate.h"

namespace trainer {
namespace {

GptConfig Gpt2Config() {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.seq_length = 64;
  c.max_position_embeddings = 64;
  c.vocab_size = 50;  // padded to 64
  c.make_vocab_size_divisible_by = 64;
  c.init_method_std = 0.5f;
  return c;
}

GptConfig Qwen2Config() {
  GptConfig c = Gpt2Config();
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
  return c;
}

GptConfig LlamaConfig() {
  GptConfig c = Qwen2Config();
  c.add_qkv_bias = false;
  c.group_query_attention = false;
  c.untie_embeddings_and_output_weights = true;
  return c;
}

// A model with Megatron init, then random biases (Megatron's are zero: they would test
// nothing) and norm weights.
std::unique_ptr<GptModel> Model(const GptConfig& c) {
  auto model = GptModel::Create(c, 1, c.max_position_embeddings);
  EXPECT_TRUE(model.ok()) << model.status().message();
  (*model)->InitMegatron(7);
  uint32_t seed = 100;
  for (const ParamTensorInfo& t : (*model)->layout().tensors()) {
    if (t.init != ParamInit::kZero && t.init != ParamInit::kOne) continue;
    const auto r = testing::RandomVector(t.numel, ++seed, 0.5f);
    float* p = (*model)->param_data() + t.offset;
    for (size_t i = 0; i < t.numel; ++i) p[i] = (t.init == ParamInit::kOne ? 1.0f : 0.0f) + r[i];
  }
  return std::move(*model);
}

Generation Cached(const GptModel& m, const std::vector<int32_t>& prompt, const SampleOptions& o) {
  auto g = GenerateWithCache(m.config(), m.param_data(), m.num_params(), prompt, o);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? *g : Generation{};
}

void CheckSameAsWithoutCache(const GptConfig& c) {
  auto model = Model(c);
  const std::vector<int32_t> prompt = {5, 9, 11, 2, 40};
  SampleOptions o;
  o.max_tokens = 40;  // prompt + new stay inside the 64-token context: no window slide
  o.temperature = 0.0f;
  auto reference = GenerateTokens(model.get(), prompt, o, c.max_position_embeddings);
  ASSERT_TRUE(reference.ok());
  const Generation g = Cached(*model, prompt, o);
  EXPECT_EQ(g.tokens, *reference) << "greedy";
  EXPECT_EQ(g.stop, StopReason::kMaxTokens);
  EXPECT_EQ(g.prompt_tokens, 5);
  EXPECT_EQ(g.decode_tokens, 39);
  EXPECT_GT(g.prefill_seconds + g.decode_seconds, 0.0);
  std::set<int32_t> distinct(reference->begin(), reference->end());
  EXPECT_GT(distinct.size(), 3u) << "a constant output would test little";

  // A prompt longer than one prefill chunk (64 rows is the whole context here: 30
  // tokens + 30 new exercise positions up to 59).
  o.temperature = 1.0f;
  o.top_k = 10;
  o.seed = 99;
  o.max_tokens = 30;
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 30; ++i) long_prompt.push_back((i * 7) % 50);
  auto sampled = GenerateTokens(model.get(), long_prompt, o, c.max_position_embeddings);
  ASSERT_TRUE(sampled.ok());
  EXPECT_EQ(Cached(*model, long_prompt, o).tokens, *sampled) << "seeded sampling";
}

TEST(KvGenerateTest, Gpt2GreedyAndSamplingMatchWithoutCache) {
  CheckSameAsWithoutCache(Gpt2Config());
}
TEST(KvGenerateTest, Qwen2GreedyAndSamplingMatchWithoutCache) {
  CheckSameAsWithoutCache(Qwen2Config());
}
TEST(KvGenerateTest, LlamaGreedyAndSamplingMatchWithoutCache) {
  CheckSameAsWithoutCache(LlamaConfig());
}

TEST(KvGenerateTest, PrefillLongerThanOneChunk) {
  GptConfig c = Qwen2Config();
  c.seq_length = c.max_position_embeddings = 160;  // a 150-token prompt: 3 prefill chunks
  auto model = Model(c);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 150; ++i) prompt.push_back((i * 13 + 1) % 50);
  SampleOptions o;
  o.temperature = 0.0f;
  o.max_tokens = 10;
  auto reference = GenerateTokens(model.get(), prompt, o, c.max_position_embeddings);
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(Cached(*model, prompt, o).tokens, *reference);
}

TEST(KvGenerateTest, StopsAtAnyStopTokenAndAtTheContext) {
  auto model = Model(Qwen2Config());
  const std::vector<int32_t> prompt = {1, 2, 3};
  SampleOptions o;
  o.temperature = 0.0f;
  o.max_tokens = 20;
  const Generation free = Cached(*model, prompt, o);
  ASSERT_EQ(free.tokens.size(), 20u);
  o.stop_tokens = {free.tokens[4]};  // its first occurrence ends the generation
  size_t first = 0;
  while (free.tokens[first] != free.tokens[4]) ++first;
  const Generation stopped = Cached(*model, prompt, o);
  EXPECT_EQ(stopped.stop, StopReason::kStopToken);
  ASSERT_EQ(stopped.tokens.size(), first + 1);  // the stop id is included
  EXPECT_TRUE(std::equal(stopped.tokens.begin(), stopped.tokens.end(), free.tokens.begin()));

  o.stop_tokens.clear();
  o.max_tokens = 64;  // 60 prompt tokens + 64 > the 64-token context: stops when full
  std::vector<int32_t> long_prompt(60, 7);
  const Generation full = Cached(*model, long_prompt, o);
  EXPECT_EQ(full.stop, StopReason::kContextFull);
  EXPECT_EQ(full.tokens.size(), 5u);  // positions 60..63 fed back, then one more choice
}

TEST(KvGenerateTest, BadRequestsAreRefused) {
  auto model = Model(Qwen2Config());
  const GptConfig& c = model->config();
  SampleOptions o;
  auto run = [&](const std::vector<int32_t>& prompt, const SampleOptions& opt) {
    return GenerateWithCache(c, model->param_data(), model->num_params(), prompt, opt);
  };
  auto too_long = run(std::vector<int32_t>(65, 1), o);  // the context is 64
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("longer than the model's context"), std::string::npos);
  o.max_tokens = 1000000000;
  auto too_many = run({1}, o);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("max_tokens"), std::string::npos);
  o.max_tokens = 4;
  EXPECT_FALSE(run({}, o).ok());
  EXPECT_FALSE(run({50}, o).ok());  // a padded id
  o.top_p = 0.0f;
  EXPECT_FALSE(run({1}, o).ok());
  o.top_p = 1.5f;
  EXPECT_FALSE(run({1}, o).ok());
  o.top_p = 1.0f;
  EXPECT_FALSE(GenerateWithCache(c, model->param_data(), model->num_params() - 1, {1}, o).ok());
}

TEST(SampleTest, TopPKeepsTheSmallestNucleus) {
  std::vector<float> probs(64, 0.0f);  // (Vp,)
  probs[3] = 0.5f;
  probs[7] = 0.3f;
  probs[1] = 0.15f;
  probs[9] = 0.05f;
  SampleOptions o;
  o.temperature = 1.0f;
  auto seen_with = [&](float top_p) {
    o.top_p = top_p;
    std::set<int> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(SampleFromProbs(probs.data(), 50, o, i / 1000.0));
    return seen;
  };
  EXPECT_EQ(seen_with(0.45f), (std::set<int>{3}));  // 0.5 alone reaches 0.45
  EXPECT_EQ(seen_with(0.6f), (std::set<int>{3, 7}));
  EXPECT_EQ(seen_with(0.9f), (std::set<int>{1, 3, 7}));
  EXPECT_EQ(seen_with(1.0f), (std::set<int>{1, 3, 7, 9}));
  EXPECT_EQ(seen_with(0.01f), (std::set<int>{3}));  // the top id always stays
  // Renormalised inside the nucleus: 3 gets 0.5 / 0.8 of the draws.
  o.top_p = 0.6f;
  int threes = 0;
  for (int i = 0; i < 1000; ++i) threes += SampleFromProbs(probs.data(), 50, o, i / 1000.0) == 3;
  EXPECT_EQ(threes, 625);
}

}  // namespace
}  // namespace trainer
