// cuda::rmsnorm_* against cpu::rmsnorm_* at fp32, bf16 and fp16. Both sides see the same
// floatX-rounded inputs; the backward of both is fed the CPU forward's rstd.
//
// Tolerances (|got - want| <= atol + rtol * |want|), as layernorm_test.cc's and for the
// same reasons (only the reduction order differs; outputs rounded to floatX):
// - rstd (fp32): atol 1e-5, rtol 2e-5;
// - out, dinp: fp32 atol 2e-5 rtol 1e-4; bf16 rtol 1e-2; fp16 rtol 2e-3;
// - dweight (fp32 sums over N rows): atol 1e-3, rtol 1e-5 (the GPU adds the CPU twin's
//   row chunks in the same order; the per-element products can still differ by FMA).
// Determinism: the GPU backward runs twice from the same state and must agree bitwise.
#include "trainer/kernels/cpu/rmsnorm.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/rmsnorm.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

constexpr gpu_test::ToleranceTable kOutTol{
    /*fp32=*/{2e-5f, 1e-4f},
    /*bf16=*/{2e-5f, 1e-2f},
    /*fp16=*/{2e-5f, 2e-3f},
};
constexpr gpu_test::Tolerance kStatTol{1e-5f, 2e-5f};
constexpr gpu_test::Tolerance kParamGradTol{1e-3f, 1e-5f};
constexpr float kEps = 1e-6f;

template <typename floatX>
class RmsNormGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(RmsNormGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

struct Shape {
  int N, C;
};
// 4999 rows: many chunks; 896 and 3584: Qwen2.5-0.5B's and 7B's widths; 770: the
// scalar path (not a multiple of the vector width).
constexpr Shape kShapes[] = {{4999, 896}, {515, 3584}, {257, 770}, {7, 64}};

std::vector<float> Plus(std::vector<float> v, float a) {
  for (float& x : v) x += a;
  return v;
}

TYPED_TEST(RmsNormGpuTest, ForwardAndBackwardMatchCpuAndAreDeterministic) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE("N=" + std::to_string(s.N) + " C=" + std::to_string(s.C));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    const std::vector<float> inp = RoundTo<floatX>(RandomNormal(NC, 1.0f, 1));
    const std::vector<float> weight = RoundTo<floatX>(Plus(RandomNormal(s.C, 0.2f, 2), 1.0f));
    const std::vector<float> dout = RoundTo<floatX>(RandomNormal(NC, 1.0f, 3));
    const std::vector<float> dinp0 = RoundTo<floatX>(RandomNormal(NC, 0.5f, 4));
    const std::vector<float> dweight0 = RandomNormal(s.C, 0.5f, 5);

    std::vector<float> out(NC), rstd(s.N), dinp = dinp0, dweight = dweight0;
    kernels::cpu::rmsnorm_forward(out.data(), rstd.data(), inp.data(), weight.data(), s.N, s.C,
                                  kEps);
    kernels::cpu::rmsnorm_backward(dinp.data(), dweight.data(), dout.data(), inp.data(),
                                   weight.data(), rstd.data(), s.N, s.C);

    DeviceBuffer<floatX> d_inp(ToType<floatX>(inp)), d_weight(ToType<floatX>(weight)),
        d_out(NC), d_dout(ToType<floatX>(dout));
    DeviceBuffer<float> d_rstd(s.N), d_cpu_rstd(rstd);
    ASSERT_TRUE(IsOk(kernels::cuda::rmsnorm_forward<floatX>(
        d_out.get(), d_rstd.get(), d_inp.get(), d_weight.get(), s.N, s.C, kEps, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(CompareClose(d_rstd.Download(), rstd, kStatTol), "") << "rstd";
    EXPECT_EQ(CompareClose(gpu_test::ToFloat<floatX>(d_out.Download()), RoundTo<floatX>(out),
                           kOutTol.For<floatX>()),
              "")
        << "out";

    std::vector<floatX> raw[2];
    std::vector<float> dw[2];
    for (int run = 0; run < 2; ++run) {
      DeviceBuffer<floatX> d_dinp(ToType<floatX>(dinp0));
      DeviceBuffer<float> d_dweight(dweight0);
      DeviceBuffer<float> scratch(kernels::cuda::rmsnorm_backward_scratch_floats(s.N, s.C));
      ASSERT_TRUE(IsOk(kernels::cuda::rmsnorm_backward<floatX>(
          d_dinp.get(), d_dweight.get(), d_dout.get(), d_inp.get(), d_weight.get(),
          d_cpu_rstd.get(), s.N, s.C, scratch.get(), nullptr)));
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      raw[run] = d_dinp.Download();
      dw[run] = d_dweight.Download();
    }
    EXPECT_EQ(CompareClose(gpu_test::ToFloat<floatX>(raw[0]), RoundTo<floatX>(dinp),
                           kOutTol.For<floatX>()),
              "")
        << "dinp";
    EXPECT_EQ(CompareClose(dw[0], dweight, kParamGradTol), "") << "dweight";
    EXPECT_EQ(std::memcmp(raw[0].data(), raw[1].data(), NC * sizeof(floatX)), 0) << "dinp bits";
    EXPECT_EQ(std::memcmp(dw[0].data(), dw[1].data(), s.C * sizeof(float)), 0) << "dweight bits";
  }
}

}  // namespace
