// AdamW on the flat buffer (decay only where the layout says: weights and embeddings,
// never biases or LayerNorm) and global-norm clipping with torch's semantics.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "trainer/model/gpt_config.h"
#include "trainer/optim/adamw.h"

namespace trainer {
namespace {

GptConfig Tiny() {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.seq_length = c.max_position_embeddings = 8;
  c.vocab_size = 60;
  c.make_vocab_size_divisible_by = 64;
  return c;
}

TEST(AdamWTest, WeightDecayOnlyOnWeights) {
  GptParamLayout layout(Tiny());
  std::vector<float> params(layout.num_params(), 1.0f), grads(layout.num_params(), 0.0f);
  AdamW adam(layout, {0.9f, 0.999f, 1e-8f, 0.1f});
  // Zero gradients: only the decoupled decay moves parameters (p *= 1 - lr*wd).
  adam.Step(params.data(), grads.data(), 0.5f);
  for (const ParamTensorInfo& t : layout.tensors()) {
    const float expected = t.weight_decay ? 1.0f - 0.5f * 0.1f : 1.0f;
    for (size_t i = 0; i < t.numel; ++i) {
      ASSERT_EQ(params[t.offset + i], expected) << t.name;
    }
    const bool is_bias_or_ln =
        t.name.find("bias") != std::string::npos || t.name.find("ln") != std::string::npos;
    EXPECT_EQ(t.weight_decay, !is_bias_or_ln) << t.name;
  }
  EXPECT_EQ(adam.step(), 1);
  // Ranges cover the buffer exactly once.
  size_t covered = 0;
  for (bool d : {true, false})
    for (auto [b, e] : adam.ranges(d)) covered += e - b;
  EXPECT_EQ(covered, layout.num_params());
}

TEST(ClipGradNormTest, TorchSemantics) {
  std::vector<float> g{3.0f, 4.0f};  // norm 5
  EXPECT_DOUBLE_EQ(ClipGradNorm(g.data(), g.size(), 10.0), 5.0);
  EXPECT_EQ(g, (std::vector<float>{3.0f, 4.0f}));  // coef >= 1: untouched
  EXPECT_DOUBLE_EQ(ClipGradNorm(g.data(), g.size(), 1.0), 5.0);
  const float coef = static_cast<float>(1.0 / (5.0 + 1e-6));
  EXPECT_EQ(g[0], 3.0f * coef);
  EXPECT_EQ(g[1], 4.0f * coef);
  EXPECT_NEAR(GradNorm(g.data(), g.size()), 1.0, 1e-6);
  std::vector<float> big(100001, 0.01f);
  EXPECT_NEAR(GradNorm(big.data(), big.size()), std::sqrt(100001.0) * 0.01, 1e-6);
  EXPECT_DOUBLE_EQ(ClipGradNorm(big.data(), big.size(), 0.0), GradNorm(big.data(), big.size()));
}

}  // namespace
}  // namespace trainer
