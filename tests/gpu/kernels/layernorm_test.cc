// cuda::layernorm_* against cpu::layernorm_* at fp32, bf16 and fp16. Both sides see
// the same floatX-rounded inputs; the backward of both is fed the CPU forward's mean/rstd.
//
// Tolerances (|got - want| <= atol + rtol * |want|):
// - mean, rstd (fp32 at every precision): atol 1e-5, rtol 2e-5. Only the summation
//   order differs (warp tree vs sequential): a few fp32 ulps over C <= 4096 terms.
// - out and dinp (in floatX; the CPU's fp32 result is rounded to floatX): the fp32 values differ
//   by ~1e-6 (reduction order), which can flip the final rounding by one ulp of floatX:
//     fp32: atol 2e-5, rtol 1e-4 (dinp carries the dnorm - mean - xhat*mean cancellation)
//     bf16: atol 2e-5, rtol 1e-2 (one bf16 ulp is at most 2^-7 relative)
//     fp16: atol 2e-5, rtol 2e-3 (one fp16 ulp is at most 2^-10 relative, plus margin)
// - dweight, dbias (fp32 sums over N <= 4999 rows of O(1) terms, magnitude ~sqrt(N)):
//   atol 1e-3, rtol 1e-5 at every precision: different (fixed) chunking on each side.
// Determinism: the GPU backward runs twice from the same state and must agree bitwise.
#include "trainer/kernels/cpu/layernorm.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/layernorm.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

// {atol, rtol}; see the top of the file.
constexpr gpu_test::ToleranceTable kOutTol{
    /*fp32=*/{2e-5f, 1e-4f},
    /*bf16=*/{2e-5f, 1e-2f},
    /*fp16=*/{2e-5f, 2e-3f},
};
constexpr gpu_test::Tolerance kStatTol{1e-5f, 2e-5f};
constexpr gpu_test::Tolerance kParamGradTol{1e-3f, 1e-5f};
constexpr float kEps = 1e-5f;

template <typename floatX>
class LayerNormGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(LayerNormGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

struct Shape {
  int N, C;
};
// 4999 rows: more than one round of the backward's blocks; 770: not a multiple of the
// vector width (scalar path); 1600, 4096: GPT-2 XL width and a wide row.
constexpr Shape kShapes[] = {{4999, 768}, {515, 1600}, {67, 4096}, {257, 770}};

std::string Describe(const Shape& s) {
  return "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C);
}

// Rows with different offsets and spreads so mean and rstd vary per row.
std::vector<float> LayerNormInput(int N, int C, uint32_t seed) {
  std::vector<float> x = RandomNormal(static_cast<size_t>(N) * C, 1.0f, seed);
  for (int n = 0; n < N; ++n) {
    const float offset = 0.1f * (n % 7) - 0.3f, scale = 0.5f + 0.25f * (n % 5);
    for (int c = 0; c < C; ++c) {
      float& v = x[static_cast<size_t>(n) * C + c];
      v = offset + scale * v;
    }
  }
  return x;
}

std::vector<float> Plus(const std::vector<float>& x, float a) {
  std::vector<float> y = x;
  for (float& v : y) v += a;
  return y;
}

TYPED_TEST(LayerNormGpuTest, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(Describe(s));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    const std::vector<float> inp = RoundTo<floatX>(LayerNormInput(s.N, s.C, 1));
    const std::vector<float> weight = RoundTo<floatX>(Plus(RandomNormal(s.C, 0.2f, 2), 1.0f));
    const std::vector<float> bias = RoundTo<floatX>(RandomNormal(s.C, 0.2f, 3));

    std::vector<float> out_cpu(NC), mean_cpu(s.N), rstd_cpu(s.N);
    kernels::cpu::layernorm_forward(out_cpu.data(), mean_cpu.data(), rstd_cpu.data(), inp.data(),
                                    weight.data(), bias.data(), s.N, s.C, kEps);

    DeviceBuffer<floatX> d_inp(ToType<floatX>(inp)), d_weight(ToType<floatX>(weight)),
        d_bias(ToType<floatX>(bias));
    DeviceBuffer<floatX> d_out(NC);
    DeviceBuffer<float> d_mean(s.N), d_rstd(s.N);
    ASSERT_TRUE(IsOk(kernels::cuda::layernorm_forward<floatX>(
        d_out.get(), d_mean.get(), d_rstd.get(), d_inp.get(), d_weight.get(), d_bias.get(), s.N,
        s.C, kEps, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(CompareClose(d_mean.Download(), mean_cpu, kStatTol), "") << "mean";
    EXPECT_EQ(CompareClose(d_rstd.Download(), rstd_cpu, kStatTol), "") << "rstd";
    EXPECT_EQ(CompareClose(gpu_test::ToFloat<floatX>(d_out.Download()), RoundTo<floatX>(out_cpu),
                           kOutTol.For<floatX>()),
              "")
        << "out";
  }
}

// The state the backward accumulates into, as floats (dinp holds floatX-rounded values).
struct Grads {
  std::vector<float> dinp, dweight, dbias;
};

template <typename floatX>
void RunGpuBackward(const Shape& s, const Grads& init, const std::vector<float>& dout,
                    const std::vector<float>& inp, const std::vector<float>& weight,
                    const std::vector<float>& mean, const std::vector<float>& rstd, Grads* result,
                    std::vector<floatX>* dinp_raw) {
  DeviceBuffer<floatX> d_dinp(ToType<floatX>(init.dinp)), d_dout(ToType<floatX>(dout)),
      d_inp(ToType<floatX>(inp));
  DeviceBuffer<floatX> d_weight(ToType<floatX>(weight));
  DeviceBuffer<float> d_dweight(init.dweight), d_dbias(init.dbias), d_mean(mean), d_rstd(rstd);
  DeviceBuffer<float> scratch(kernels::cuda::layernorm_backward_scratch_floats(s.N, s.C));
  ASSERT_NE(scratch.get(), nullptr);
  ASSERT_TRUE(IsOk(kernels::cuda::layernorm_backward<floatX>(
      d_dinp.get(), d_dweight.get(), d_dbias.get(), d_dout.get(), d_inp.get(), d_weight.get(),
      d_mean.get(), d_rstd.get(), s.N, s.C, scratch.get(), nullptr)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  *dinp_raw = d_dinp.Download();
  result->dinp = gpu_test::ToFloat<floatX>(*dinp_raw);
  result->dweight = d_dweight.Download();
  result->dbias = d_dbias.Download();
}

bool BitwiseEqual(const void* a, const void* b, size_t bytes) {
  return std::memcmp(a, b, bytes) == 0;
}

TYPED_TEST(LayerNormGpuTest, BackwardMatchesCpuAndIsDeterministic) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(Describe(s));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    const std::vector<float> inp = RoundTo<floatX>(LayerNormInput(s.N, s.C, 11));
    const std::vector<float> weight = RoundTo<floatX>(Plus(RandomNormal(s.C, 0.2f, 12), 1.0f));
    const std::vector<float> bias = RoundTo<floatX>(RandomNormal(s.C, 0.2f, 13));
    const std::vector<float> dout = RoundTo<floatX>(RandomNormal(NC, 1.0f, 14));
    // Non-zero starting gradients: the backward accumulates into all three.
    const Grads init{RoundTo<floatX>(RandomNormal(NC, 0.5f, 15)), RandomNormal(s.C, 0.5f, 16),
                     RandomNormal(s.C, 0.5f, 17)};

    std::vector<float> out(NC), mean(s.N), rstd(s.N);
    kernels::cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(),
                                    bias.data(), s.N, s.C, kEps);
    Grads cpu = init;
    kernels::cpu::layernorm_backward(cpu.dinp.data(), cpu.dweight.data(), cpu.dbias.data(),
                                     dout.data(), inp.data(), weight.data(), mean.data(),
                                     rstd.data(), s.N, s.C);

    Grads gpu, gpu_again;
    std::vector<floatX> dinp_raw, dinp_raw_again;
    RunGpuBackward<floatX>(s, init, dout, inp, weight, mean, rstd, &gpu, &dinp_raw);
    RunGpuBackward<floatX>(s, init, dout, inp, weight, mean, rstd, &gpu_again, &dinp_raw_again);
    if (::testing::Test::HasFatalFailure()) return;

    EXPECT_EQ(CompareClose(gpu.dinp, RoundTo<floatX>(cpu.dinp), kOutTol.For<floatX>()), "")
        << "dinp";
    EXPECT_EQ(CompareClose(gpu.dweight, cpu.dweight, kParamGradTol), "") << "dweight";
    EXPECT_EQ(CompareClose(gpu.dbias, cpu.dbias, kParamGradTol), "") << "dbias";

    EXPECT_TRUE(BitwiseEqual(dinp_raw.data(), dinp_raw_again.data(), NC * sizeof(floatX)))
        << "dinp differs between two runs";
    EXPECT_TRUE(BitwiseEqual(gpu.dweight.data(), gpu_again.dweight.data(), s.C * sizeof(float)))
        << "dweight differs between two runs";
    EXPECT_TRUE(BitwiseEqual(gpu.dbias.data(), gpu_again.dbias.data(), s.C * sizeof(float)))
        << "dbias differs between two runs";
  }
}

}  // namespace
