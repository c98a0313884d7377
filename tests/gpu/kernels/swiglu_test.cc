// cuda::swiglu_* against cpu::swiglu_* at fp32, bf16 and fp16, on the same floatX-rounded
// inputs. The CUDA backward overwrites dinp, the CPU one accumulates (its dinp starts
// at zero here; the GPU's at NaN bytes, so an unwritten slot fails). Tolerances as
// gelu_test.cc's: fp32 rtol 1e-5 (the GPU's expf and FMA contraction differ by a few
// ulp), bf16 / fp16 plus half an ulp of the output's rounding; atol 1e-5.
#include "trainer/kernels/cpu/swiglu.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/swiglu.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

constexpr gpu_test::ToleranceTable kTol{
    /*fp32=*/{1e-5f, 1e-5f},
    /*bf16=*/{1e-5f, 0x1.0p-8f + 1e-5f},
    /*fp16=*/{1e-5f, 0x1.0p-11f + 1e-5f},
};

template <typename floatX>
class SwigluGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(SwigluGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

TYPED_TEST(SwigluGpuTest, MatchesCpuOnQwenShapes) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  // (B*T, F): Qwen2.5-0.5B's MLP at 2 x 256 tokens, and an odd width.
  for (auto [N, F] : {std::pair<int, int>{512, 4864}, {33, 77}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " F=" + std::to_string(F));
    const size_t NF = static_cast<size_t>(N) * F;
    const std::vector<float> inp = RoundTo<floatX>(RandomNormal(2 * NF, 2.0f, 7));
    const std::vector<float> dout = RoundTo<floatX>(RandomNormal(NF, 1.0f, 8));
    std::vector<float> out(NF), dinp(2 * NF, 0.0f);
    kernels::cpu::swiglu_forward(out.data(), inp.data(), N, F);
    kernels::cpu::swiglu_backward(dinp.data(), inp.data(), dout.data(), N, F);

    DeviceBuffer<floatX> d_inp(ToType<floatX>(inp)), d_dout(ToType<floatX>(dout)), d_out(NF),
        d_dinp(2 * NF);
    d_out.Fill(0xFF);
    d_dinp.Fill(0xFF);
    ASSERT_TRUE(
        IsOk(kernels::cuda::swiglu_forward<floatX>(d_out.get(), d_inp.get(), N, F, nullptr)));
    ASSERT_TRUE(IsOk(kernels::cuda::swiglu_backward<floatX>(d_dinp.get(), d_inp.get(),
                                                            d_dout.get(), N, F, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(CompareClose(gpu_test::ToFloat<floatX>(d_out.Download()), out, kTol.For<floatX>()),
              "")
        << "forward";
    EXPECT_EQ(
        CompareClose(gpu_test::ToFloat<floatX>(d_dinp.Download()), dinp, kTol.For<floatX>()), "")
        << "backward";
  }
}

}  // namespace
