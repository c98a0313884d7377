// CudaGptModel against the CPU GptModel (the fp32 reference), same weights, tokens and
// dropout masks:
//   fp32: loss to 1e-5 relative, every gradient tensor to 1e-4 norm-wise relative
//         (the bound; GEMM and reduction order differ, nothing else);
//   bf16/fp16: loss to 2e-2 relative and gradients to 5e-2 norm-wise (8 / 11-bit
//         mantissas in the activations, fp32 accumulation everywhere);
// plus one AdamW step, checkpoint_activations giving bitwise the same gradients,
// the overflow signal, the memory plan against the measured peak (within 5%), and
// the out-of-memory message.
#include "trainer/model/gpt_cuda.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/model/gpt.h"
#include "trainer/optim/adamw.h"

namespace trainer {
namespace {

GptConfig SmallConfig(float dropout) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 256;
  c.num_attention_heads = 4;  // head size 64
  c.seq_length = 128;
  c.max_position_embeddings = 128;
  c.vocab_size = 1000;  // padded to 1024
  c.hidden_dropout = dropout;
  c.attention_dropout = dropout;
  c.seed = 7;
  return c;
}

struct Batch {
  std::vector<int> inputs, targets;
};
Batch RandomBatch(const GptConfig& c, int B, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(0, c.vocab_size - 1);
  Batch b;
  for (int i = 0; i < B * c.seq_length; ++i) {
    b.inputs.push_back(tok(rng));
    b.targets.push_back(tok(rng));
  }
  return b;
}

double NormRelErr(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct Case {
  Precision precision;
  double loss_tol, grad_tol;
};

class CudaVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(CudaVsCpuTest, LossAndEveryGradientMatchTheCpuModel) {
  SKIP_WITHOUT_GPU();
  const Case k = GetParam();
  for (float dropout : {0.0f, 0.1f}) {
    const GptConfig c = SmallConfig(dropout);
    const int B = 4;
    auto cpu = GptModel::Create(c, B, c.seq_length);
    ASSERT_TRUE(cpu.ok());
    (*cpu)->InitMegatron(11);
    auto gpu = CudaGptModel::Create(c, B, c.seq_length, k.precision, 0, AdamWConfig{});
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    ASSERT_TRUE((*gpu)->LoadParams((*cpu)->param_data()).ok());
    const Batch batch = RandomBatch(c, B, 3);
    StepOptions opt;
    opt.training = true;
    opt.rng_step = 12345;
    auto lc = (*cpu)->Forward(batch.inputs.data(), batch.targets.data(), B, c.seq_length, opt);
    auto lg = (*gpu)->Forward(batch.inputs.data(), batch.targets.data(), B, c.seq_length, opt);
    ASSERT_TRUE(lc.ok() && lg.ok()) << lg.status().ToString();
    EXPECT_NEAR(*lg, *lc, k.loss_tol * std::fabs(*lc)) << "dropout " << dropout;
    ASSERT_TRUE((*cpu)->Backward(1.0f).ok());
    ASSERT_TRUE((*gpu)->Backward(1.0f).ok());
    std::vector<float> g((*gpu)->num_params());
    ASSERT_TRUE((*gpu)->StoreGrads(g.data()).ok());
    for (const ParamTensorInfo& t : (*cpu)->layout().tensors()) {
      const double err = NormRelErr(g.data() + t.offset, (*cpu)->grad_data() + t.offset, t.numel);
      EXPECT_LE(err, k.grad_tol) << t.name << " (" << PrecisionName(k.precision) << ", dropout "
                                 << dropout << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaVsCpuTest,
                         ::testing::Values(Case{Precision::kFp32, 1e-5, 1e-4},
                                           Case{Precision::kBf16, 2e-2, 5e-2},
                                           Case{Precision::kFp16, 2e-2, 5e-2}),
                         [](const auto& info) { return PrecisionName(info.param.precision); });

TEST(CudaGptModelTest, CheckpointedActivationsGiveBitwiseTheSameGradients) {
  SKIP_WITHOUT_GPU();
  GptConfig c = SmallConfig(0.1f);
  const int B = 2;
  std::vector<float> params(GptParamLayout(c).num_params());
  InitMegatronParams(c, GptParamLayout(c), 5, params.data());
  std::vector<std::vector<float>> grads;
  for (bool ckpt : {false, true}) {
    c.checkpoint_activations = ckpt;
    auto gpu = CudaGptModel::Create(c, B, c.seq_length, Precision::kBf16, 0, AdamWConfig{});
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    ASSERT_TRUE((*gpu)->LoadParams(params.data()).ok());
    const Batch batch = RandomBatch(c, B, 9);
    StepOptions opt;
    ASSERT_TRUE(
        (*gpu)->Forward(batch.inputs.data(), batch.targets.data(), B, c.seq_length, opt).ok());
    ASSERT_TRUE((*gpu)->Backward(1.0f).ok());
    grads.emplace_back(params.size());
    ASSERT_TRUE((*gpu)->StoreGrads(grads.back().data()).ok());
  }
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(CudaGptModelTest, AdamWStepMatchesTheCpuOptimizer) {
  SKIP_WITHOUT_GPU();
  const GptConfig c = SmallConfig(0.0f);
  const int B = 2;
  auto cpu = GptModel::Create(c, B, c.seq_length);
  ASSERT_TRUE(cpu.ok());
  (*cpu)->InitMegatron(1);
  auto gpu = CudaGptModel::Create(c, B, c.seq_length, Precision::kFp32, 0, AdamWConfig{});
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  ASSERT_TRUE((*gpu)->LoadParams((*cpu)->param_data()).ok());
  const Batch batch = RandomBatch(c, B, 4);
  StepOptions opt;
  ASSERT_TRUE(
      (*cpu)->Forward(batch.inputs.data(), batch.targets.data(), B, c.seq_length, opt).ok());
  ASSERT_TRUE((*cpu)->Backward(1.0f).ok());
  // The same gradients on both sides, so only the optimizer is compared.
  ASSERT_TRUE((*gpu)->LoadGrads((*cpu)->grad_data()).ok());
  AdamW adam((*cpu)->layout(), AdamWConfig{});
  const float lr = 1e-3f, clip = 0.5f;
  ScaleInPlace((*cpu)->grad_data(), (*cpu)->num_params(), clip);
  adam.Step((*cpu)->param_data(), (*cpu)->grad_data(), lr);
  ASSERT_TRUE((*gpu)->Step(lr, clip).ok());
  std::vector<float> p((*gpu)->num_params()), m(p.size()), v(p.size());
  ASSERT_TRUE((*gpu)->StoreParams(p.data()).ok());
  ASSERT_TRUE((*gpu)->StoreOptimizer(m.data(), v.data()).ok());
  EXPECT_LE(NormRelErr(p.data(), (*cpu)->param_data(), p.size()), 1e-6);
  EXPECT_LE(NormRelErr(m.data(), adam.m(), p.size()), 1e-6);
  EXPECT_LE(NormRelErr(v.data(), adam.v(), p.size()), 1e-6);
  EXPECT_EQ((*gpu)->adam_step(), 1);
}

TEST(CudaGptModelTest, NonFiniteGradientShowsInTheNorm) {
  SKIP_WITHOUT_GPU();
  const GptConfig c = SmallConfig(0.0f);
  auto gpu = CudaGptModel::Create(c, 1, c.seq_length, Precision::kFp16, 0, AdamWConfig{});
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  std::vector<float> g((*gpu)->num_params(), 0.5f);
  ASSERT_TRUE((*gpu)->LoadGrads(g.data()).ok());
  auto finite = (*gpu)->GradNormSquared();
  ASSERT_TRUE(finite.ok());
  EXPECT_NEAR(*finite, 0.25 * g.size(), 1e-9 * g.size());
  g[g.size() / 2] = INFINITY;
  ASSERT_TRUE((*gpu)->LoadGrads(g.data()).ok());
  auto inf = (*gpu)->GradNormSquared();
  ASSERT_TRUE(inf.ok());
  EXPECT_FALSE(std::isfinite(*inf));
}

TEST(CudaGptModelTest, MeasuredPeakIsWithinFivePercentOfThePlan) {
  SKIP_WITHOUT_GPU();
  GptConfig c = SmallConfig(0.1f);
  c.num_layers = 12;
  c.hidden_size = 768;
  c.num_attention_heads = 12;
  c.seq_length = c.max_position_embeddings = 1024;
  c.vocab_size = 50257;
  const int B = 8;
  auto gpu = CudaGptModel::Create(c, B, c.seq_length, Precision::kBf16, 0, AdamWConfig{});
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  std::vector<float> params((*gpu)->num_params());
  InitMegatronParams(c, (*gpu)->layout(), 1, params.data());
  ASSERT_TRUE((*gpu)->LoadParams(params.data()).ok());
  const Batch batch = RandomBatch(c, B, 2);
  StepOptions opt;
  for (int step = 0; step < 2; ++step) {
    ASSERT_TRUE(
        (*gpu)->Forward(batch.inputs.data(), batch.targets.data(), B, c.seq_length, opt).ok());
    ASSERT_TRUE((*gpu)->Backward(1.0f).ok());
    ASSERT_TRUE((*gpu)->Step(1e-4f, 1.0f).ok());
    ASSERT_TRUE((*gpu)->Synchronize().ok());
  }
  const double plan = static_cast<double>((*gpu)->plan().total());
  const double peak = static_cast<double>((*gpu)->peak_used_bytes());
  EXPECT_LE(std::fabs(peak - plan) / plan, 0.05)
      << "plan " << plan / (1 << 20) << " MiB, peak " << peak / (1 << 20) << " MiB";
}

TEST(CudaGptModelTest, OutOfMemoryIsNamedBeforeTheFirstStepWithWhatToChange) {
  SKIP_WITHOUT_GPU();
  GptConfig c = SmallConfig(0.0f);
  c.num_layers = 48;
  c.hidden_size = 4096;
  c.num_attention_heads = 32;
  c.seq_length = c.max_position_embeddings = 1024;
  c.vocab_size = 50257;
  auto gpu = CudaGptModel::Create(c, 64, c.seq_length, Precision::kBf16, 0, AdamWConfig{});
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), coord::StatusCode::kResourceExhausted);
  const std::string& msg = gpu.status().message();
  EXPECT_NE(msg.find("out of GPU memory before the first step"), std::string::npos) << msg;
  EXPECT_NE(msg.find("activations"), std::string::npos) << msg;
  EXPECT_NE(msg.find("micro_batch_size (now 64)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checkpoint_activations"), std::string::npos) << msg;
  EXPECT_NE(msg.find("zero_optimization.stage"), std::string::npos) << msg;
}

}  // namespace
}  // namespace trainer
