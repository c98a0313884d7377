// cuda::layernorm_* against cpu::layernorm_* at fp32, bf16 and fp16. Both sides see
// the same T-rounded inputs; the backward of both is fed the CPU forward's mean/rstd.
//
// Tolerances (|got - want| <= atol + rtol * |want|):
// - mean, rstd (fp32 at every precision): atol 1e-5, rtol 2e-5. Only the summation
//   order differs (warp tree vs sequential): a few fp32 ulps over C <= 4096 terms.
// - out and dinp (in T; the CPU's fp32 result is rounded to T): the fp32 values differ
//   by ~1e-6 (reduction order), which can flip the final rounding by one ulp of T:
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
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

template <typename T>
struct Tolerance;
template <>
struct Tolerance<float> {
  static constexpr float kAtol = 2e-5f, kRtol = 1e-4f;
};
template <>
struct Tolerance<__nv_bfloat16> {
  static constexpr float kAtol = 2e-5f, kRtol = 1e-2f;
};
template <>
struct Tolerance<__half> {
  static constexpr float kAtol = 2e-5f, kRtol = 2e-3f;
};
constexpr float kStatAtol = 1e-5f, kStatRtol = 2e-5f;
constexpr float kParamGradAtol = 1e-3f, kParamGradRtol = 1e-5f;
constexpr float kEps = 1e-5f;

struct TypeNames {
  template <typename T>
  static std::string GetName(int) {
    return kernels::cuda::DTypeName(kernels::cuda::DTypeOf<T>());
  }
};

template <typename T>
class LayerNormGpuTest : public ::testing::Test {};
using ComputeTypes = ::testing::Types<float, __nv_bfloat16, __half>;
TYPED_TEST_SUITE(LayerNormGpuTest, ComputeTypes, TypeNames);

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
  using T = TypeParam;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(Describe(s));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    const std::vector<float> inp = RoundTo<T>(LayerNormInput(s.N, s.C, 1));
    const std::vector<float> weight = RoundTo<T>(Plus(RandomNormal(s.C, 0.2f, 2), 1.0f));
    const std::vector<float> bias = RoundTo<T>(RandomNormal(s.C, 0.2f, 3));

    std::vector<float> out_cpu(NC), mean_cpu(s.N), rstd_cpu(s.N);
    kernels::cpu::layernorm_forward(out_cpu.data(), mean_cpu.data(), rstd_cpu.data(), inp.data(),
                                    weight.data(), bias.data(), s.N, s.C, kEps);

    DeviceBuffer<T> d_inp(ToType<T>(inp)), d_weight(ToType<T>(weight)), d_bias(ToType<T>(bias));
    DeviceBuffer<T> d_out(NC);
    DeviceBuffer<float> d_mean(s.N), d_rstd(s.N);
    ASSERT_EQ(
        kernels::cuda::layernorm_forward<T>(d_out.get(), d_mean.get(), d_rstd.get(), d_inp.get(),
                                            d_weight.get(), d_bias.get(), s.N, s.C, kEps, nullptr),
        "");
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(CompareClose(d_mean.Download(), mean_cpu, kStatAtol, kStatRtol), "") << "mean";
    EXPECT_EQ(CompareClose(d_rstd.Download(), rstd_cpu, kStatAtol, kStatRtol), "") << "rstd";
    EXPECT_EQ(CompareClose(gpu_test::ToFloat<T>(d_out.Download()), RoundTo<T>(out_cpu),
                           Tolerance<T>::kAtol, Tolerance<T>::kRtol),
              "")
        << "out";
  }
}

// The state the backward accumulates into, as floats (dinp holds T-rounded values).
struct Grads {
  std::vector<float> dinp, dweight, dbias;
};

template <typename T>
void RunGpuBackward(const Shape& s, const Grads& init, const std::vector<float>& dout,
                    const std::vector<float>& inp, const std::vector<float>& weight,
                    const std::vector<float>& mean, const std::vector<float>& rstd, Grads* result,
                    std::vector<T>* dinp_raw) {
  DeviceBuffer<T> d_dinp(ToType<T>(init.dinp)), d_dout(ToType<T>(dout)), d_inp(ToType<T>(inp));
  DeviceBuffer<T> d_weight(ToType<T>(weight));
  DeviceBuffer<float> d_dweight(init.dweight), d_dbias(init.dbias), d_mean(mean), d_rstd(rstd);
  DeviceBuffer<float> scratch(kernels::cuda::layernorm_backward_scratch_floats(s.N, s.C));
  ASSERT_NE(scratch.get(), nullptr);
  ASSERT_EQ(kernels::cuda::layernorm_backward<T>(
                d_dinp.get(), d_dweight.get(), d_dbias.get(), d_dout.get(), d_inp.get(),
                d_weight.get(), d_mean.get(), d_rstd.get(), s.N, s.C, scratch.get(), nullptr),
            "");
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  *dinp_raw = d_dinp.Download();
  result->dinp = gpu_test::ToFloat<T>(*dinp_raw);
  result->dweight = d_dweight.Download();
  result->dbias = d_dbias.Download();
}

bool BitwiseEqual(const void* a, const void* b, size_t bytes) {
  return std::memcmp(a, b, bytes) == 0;
}

TYPED_TEST(LayerNormGpuTest, BackwardMatchesCpuAndIsDeterministic) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(Describe(s));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    const std::vector<float> inp = RoundTo<T>(LayerNormInput(s.N, s.C, 11));
    const std::vector<float> weight = RoundTo<T>(Plus(RandomNormal(s.C, 0.2f, 12), 1.0f));
    const std::vector<float> bias = RoundTo<T>(RandomNormal(s.C, 0.2f, 13));
    const std::vector<float> dout = RoundTo<T>(RandomNormal(NC, 1.0f, 14));
    // Non-zero starting gradients: the backward accumulates into all three.
    const Grads init{RoundTo<T>(RandomNormal(NC, 0.5f, 15)), RandomNormal(s.C, 0.5f, 16),
                     RandomNormal(s.C, 0.5f, 17)};

    std::vector<float> out(NC), mean(s.N), rstd(s.N);
    kernels::cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(),
                                    bias.data(), s.N, s.C, kEps);
    Grads cpu = init;
    kernels::cpu::layernorm_backward(cpu.dinp.data(), cpu.dweight.data(), cpu.dbias.data(),
                                     dout.data(), inp.data(), weight.data(), mean.data(),
                                     rstd.data(), s.N, s.C);

    Grads gpu, gpu_again;
    std::vector<T> dinp_raw, dinp_raw_again;
    RunGpuBackward<T>(s, init, dout, inp, weight, mean, rstd, &gpu, &dinp_raw);
    RunGpuBackward<T>(s, init, dout, inp, weight, mean, rstd, &gpu_again, &dinp_raw_again);
    if (::testing::Test::HasFatalFailure()) return;

    EXPECT_EQ(
        CompareClose(gpu.dinp, RoundTo<T>(cpu.dinp), Tolerance<T>::kAtol, Tolerance<T>::kRtol), "")
        << "dinp";
    EXPECT_EQ(CompareClose(gpu.dweight, cpu.dweight, kParamGradAtol, kParamGradRtol), "")
        << "dweight";
    EXPECT_EQ(CompareClose(gpu.dbias, cpu.dbias, kParamGradAtol, kParamGradRtol), "") << "dbias";

    EXPECT_TRUE(BitwiseEqual(dinp_raw.data(), dinp_raw_again.data(), NC * sizeof(T)))
        << "dinp differs between two runs";
    EXPECT_TRUE(BitwiseEqual(gpu.dweight.data(), gpu_again.dweight.data(), s.C * sizeof(float)))
        << "dweight differs between two runs";
    EXPECT_TRUE(BitwiseEqual(gpu.dbias.data(), gpu_again.dbias.data(), s.C * sizeof(float)))
        << "dbias differs between two runs";
  }
}

}  // namespace
