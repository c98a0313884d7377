// cuda::attention_forward/backward against cpu::attention_forward/backward at each precision.
// qkv and dout ~ N(0, 1) are rounded to floatX first so both sides see the same inputs; the GPU
// draws the CPU's Philox dropout elements, so p = 0.1 is compared elementwise too.
// A tensor passes when every |got - want| <= atol * max|want| + rtol * |want|:
//   fp32: out 1e-4, dqkv 2e-4 (atol and rtol). Same fp32 math; only the summation order
//         (64-wide tiles, online-softmax rescaling) and exp2f for expf differ.
//   bf16: out 1e-2, dqkv 2e-2. Outputs are rounded to bf16 (2^-9 relative), and backward's
//         D = rowsum(dout * out) reads the bf16-rounded out where the CPU has fp32 out, which
//         shifts dS = P (dP - D) by about 2^-9 |dout| |out| sqrt(HS).
//   fp16: out 2e-3, dqkv 5e-3. As bf16 with 2^-11 rounding.
//   lse (fp32 at every precision) against a float64 log-sum-exp of the same rounded inputs:
//         1e-5 relative to max|lse| plus 1e-5 relative.
#include "trainer/kernels/cuda/attention.cuh"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/core/philox.h"
#include "trainer/kernels/cpu/attention.h"

namespace {

using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::Tolerance;

// {atol (times max|want|), rtol}; see the top of the file.
constexpr gpu_test::ToleranceTable kOutTol{
    /*fp32=*/{1e-4f, 1e-4f},
    /*bf16=*/{1e-2f, 1e-2f},
    /*fp16=*/{2e-3f, 2e-3f},
};
constexpr gpu_test::ToleranceTable kGradTol{
    /*fp32=*/{2e-4f, 2e-4f},
    /*bf16=*/{2e-2f, 2e-2f},
    /*fp16=*/{5e-3f, 5e-3f},
};
constexpr Tolerance kLseTol{1e-5f, 1e-5f};  // every compute type

// CompareClose with the absolute part scaled by the reference's largest magnitude.
std::string CompareScaled(const std::vector<float>& got, const std::vector<float>& want,
                          Tolerance tol) {
  float max_abs = 0.0f;
  for (float w : want) max_abs = std::max(max_abs, std::fabs(w));
  return gpu_test::CompareClose(got, want, tol.atol * std::max(max_abs, 1e-6f), tol.rtol);
}

// lse (B, NH, T) of the causal scores q k^T / sqrt(HS), in float64.
std::vector<float> ReferenceLse(const std::vector<float>& qkv, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  std::vector<float> lse(static_cast<size_t>(B) * NH * T);
  std::vector<double> s(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const float* q = &qkv[(static_cast<size_t>(b) * T + t) * C3 + h * HS];
        double m = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          const float* k = &qkv[(static_cast<size_t>(b) * T + t2) * C3 + C + h * HS];
          double dot = 0.0;
          for (int i = 0; i < HS; ++i) dot += static_cast<double>(q[i]) * k[i];
          s[t2] = dot * scale;
          m = std::max(m, s[t2]);
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; ++t2) sum += std::exp(s[t2] - m);
        lse[(static_cast<size_t>(b) * NH + h) * T + t] = static_cast<float>(m + std::log(sum));
      }
  return lse;
}

struct Case {
  int B, T, C, NH;
  float p;
};

std::string Describe(const Case& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" + std::to_string(c.C) +
         " NH=" + std::to_string(c.NH) + " p=" + std::to_string(c.p);
}

template <typename floatX>
void RunCase(const Case& c, uint32_t seed, bool check_determinism = false) {
  SCOPED_TRACE(Describe(c) + " dtype=" + gpu_test::ComputeTypeName<floatX>());
  const int B = c.B, T = c.T, C = c.C, NH = c.NH;
  const size_t n_qkv = static_cast<size_t>(B) * T * 3 * C, n_out = static_cast<size_t>(B) * T * C;
  const trainer::RngStream rng{0x5eed1234ull + seed, 3};

  const std::vector<float> qkv =
      gpu_test::RoundTo<floatX>(gpu_test::RandomNormal(n_qkv, 1.0f, seed));
  const std::vector<float> dout =
      gpu_test::RoundTo<floatX>(gpu_test::RandomNormal(n_out, 1.0f, seed + 1));

  std::vector<float> out_ref(n_out), att(static_cast<size_t>(B) * NH * T * T);
  std::vector<float> dqkv_ref(n_qkv, 0.0f);  // the CPU backward accumulates
  kernels::cpu::attention_forward(out_ref.data(), att.data(), qkv.data(), B, T, C, NH, c.p, rng);
  kernels::cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), att.data(), B, T, C,
                                   NH, c.p, rng);
  const std::vector<float> lse_ref = ReferenceLse(qkv, B, T, C, NH);

  DeviceBuffer<floatX> d_qkv(gpu_test::ToType<floatX>(qkv)), d_dout(gpu_test::ToType<floatX>(dout));
  DeviceBuffer<floatX> d_out(n_out), d_dqkv(n_qkv);
  DeviceBuffer<float> d_lse(static_cast<size_t>(B) * NH * T);
  DeviceBuffer<float> d_scratch(kernels::cuda::attention_backward_scratch_floats(B, T, C, NH));
  ASSERT_NE(d_qkv.get(), nullptr);
  ASSERT_NE(d_dqkv.get(), nullptr);
  d_out.Fill(0xFF);  // NaN in every type: each element must be written
  d_lse.Fill(0xFF);
  d_dqkv.Fill(0xFF);

  ASSERT_TRUE(IsOk(kernels::cuda::attention_forward<floatX>(d_out.get(), d_lse.get(), d_qkv.get(),
                                                            B, T, C, NH, c.p, rng, 0)));
  ASSERT_TRUE(IsOk(kernels::cuda::attention_backward<floatX>(
      d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), B, T, C, NH, c.p, rng,
      d_scratch.get(), 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const std::vector<float> out = gpu_test::ToFloat<floatX>(d_out.Download());
  const std::vector<float> dqkv = gpu_test::ToFloat<floatX>(d_dqkv.Download());
  EXPECT_EQ(CompareScaled(out, out_ref, kOutTol.For<floatX>()), "") << "out";
  EXPECT_EQ(CompareScaled(d_lse.Download(), lse_ref, kLseTol), "") << "lse";
  EXPECT_EQ(CompareScaled(dqkv, dqkv_ref, kGradTol.For<floatX>()), "") << "dqkv";

  if (check_determinism) {
    const std::vector<floatX> first = d_dqkv.Download();
    ASSERT_TRUE(IsOk(kernels::cuda::attention_backward<floatX>(
        d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), B, T, C, NH, c.p, rng,
        d_scratch.get(), 0)));
    const std::vector<floatX> second = d_dqkv.Download();
    EXPECT_EQ(memcmp(first.data(), second.data(), first.size() * sizeof(floatX)), 0)
        << "backward is not bitwise reproducible";
  }
}

template <typename floatX>
class AttentionGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(AttentionGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

// HS 64 (GPT-2 small), HS 128 with T not a multiple of the 64-row tile, HS 32.
TYPED_TEST(AttentionGpuTest, MatchesCpuReference) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 10;
  for (float p : {0.0f, 0.1f}) {
    RunCase<TypeParam>({2, 256, 768, 12, p}, seed++, /*check_determinism=*/p > 0.0f);
    RunCase<TypeParam>({1, 100, 256, 2, p}, seed++);
    RunCase<TypeParam>({3, 64, 128, 4, p}, seed++);
    RunCase<TypeParam>({2, 1, 128, 2, p}, seed++);  // a single row: one entry, probability 1
  }
}

// Sixteen tiles each way: the online softmax across many k tiles and long backward walks.
TEST(AttentionGpuLongTest, Bf16ManyTilesMatchesCpuReference) {
  SKIP_WITHOUT_GPU();
  RunCase<__nv_bfloat16>({1, 1024, 128, 2, 0.1f}, 77);
}

}  // namespace
