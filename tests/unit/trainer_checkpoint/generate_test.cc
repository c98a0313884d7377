// Sampling: deterministic for a seed, greedy equals the argmax of an independent
// full-sequence forward, top-k respected, padded vocabulary ids never produced.
#include "trainer/model/generate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace trainer {
namespace {

GptConfig TinyConfig() {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.seq_length = 16;
  c.max_position_embeddings = 16;
  c.vocab_size = 50;  // padded to 64
  c.make_vocab_size_divisible_by = 64;
  c.init_method_std = 0.5f;  // peaky distributions: greedy ties are implausible
  return c;
}

std::unique_ptr<GptModel> TinyModel() {
  auto model = GptModel::Create(TinyConfig(), 1, 16);
  EXPECT_TRUE(model.ok());
  (*model)->InitMegatron(7);
  return std::move(*model);
}

TEST(GenerateTest, DeterministicForASeed) {
  auto model = TinyModel();
  SampleOptions o;
  o.max_tokens = 24;  // runs past the 16-token window
  o.temperature = 1.0f;
  o.seed = 42;
  auto a = GenerateTokens(model.get(), {1, 2, 3}, o, 16);
  auto b = GenerateTokens(model.get(), {1, 2, 3}, o, 16);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 24u);
  EXPECT_EQ(*a, *b);
  o.seed = 43;
  auto c = GenerateTokens(model.get(), {1, 2, 3}, o, 16);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(GenerateTest, GreedyIsArgmaxOfOneFullForward) {
  auto model = TinyModel();
  const std::vector<int32_t> prompt = {5, 9, 11};
  SampleOptions o;
  o.max_tokens = 10;
  o.temperature = 0.0f;
  auto gen = GenerateTokens(model.get(), prompt, o, 16);
  ASSERT_TRUE(gen.ok());
  // One teacher-forced forward over prompt + generated[:-1]: position t predicts t+1.
  std::vector<int> seq(prompt.begin(), prompt.end());
  seq.insert(seq.end(), gen->begin(), gen->end() - 1);
  const int T = static_cast<int>(seq.size()), Vp = 64;
  std::vector<int> targets(seq.size(), 0);
  ASSERT_TRUE(model->Forward(seq.data(), targets.data(), 1, T, {false, 0}).ok());
  for (size_t i = 0; i < gen->size(); ++i) {
    const float* row = model->probs() + (prompt.size() - 1 + i) * Vp;  // (Vp,)
    const int argmax = static_cast<int>(std::max_element(row, row + 50) - row);
    EXPECT_EQ((*gen)[i], argmax) << "token " << i;
  }
}

TEST(GenerateTest, NeverPaddedIdsAndTopK) {
  std::vector<float> probs(64, 0.0f);  // (Vp,) with junk in the padding
  for (int v = 0; v < 50; ++v) probs[v] = 0.001f * static_cast<float>(v + 1);
  for (int v = 50; v < 64; ++v) probs[v] = 1.0f;
  SampleOptions o;
  o.temperature = 5.0f;
  o.top_k = 3;
  std::set<int> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.insert(SampleFromProbs(probs.data(), 50, o, i / 1000.0));
  }
  EXPECT_EQ(seen, (std::set<int>{47, 48, 49}));
  o.temperature = 0.0f;
  EXPECT_EQ(SampleFromProbs(probs.data(), 50, o, 0.5), 49);
  o.temperature = 100.0f;
  o.top_k = 0;
  auto model = TinyModel();
  o.max_tokens = 200;
  auto gen = GenerateTokens(model.get(), {0}, o, 16);
  ASSERT_TRUE(gen.ok());
  for (int32_t id : *gen) EXPECT_LT(id, 50);
}

TEST(GenerateTest, BadInput) {
  auto model = TinyModel();
  SampleOptions o;
  EXPECT_FALSE(GenerateTokens(model.get(), {}, o, 16).ok());
  EXPECT_FALSE(GenerateTokens(model.get(), {50}, o, 16).ok());  // a padded id as prompt
  o.temperature = -1.0f;
  EXPECT_FALSE(GenerateTokens(model.get(), {1}, o, 16).ok());
}

}  // namespace
}  // namespace trainer
