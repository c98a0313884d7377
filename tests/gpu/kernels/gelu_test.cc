// cuda::gelu_forward / gelu_backward<floatX> against cpu::gelu_* for fp32, bf16 and fp16. The
// inputs are rounded to floatX first, so both sides see the same values and compute in fp32.
// Note the contracts differ: the CUDA backward overwrites dinp, the CPU one accumulates
// (the CPU dinp starts at zero here, the GPU one at NaN bytes to catch unwritten slots).
// Tolerances (|got - want| <= atol + rtol |want|, want = the CPU's fp32 result):
//   fp32: rtol 1e-5, atol 1e-5 — the GPU's tanhf and FMA contraction differ from glibc by
//         a few fp32 ulp;
//   bf16: rtol 2^-8 + 1e-5, atol 1e-5 — plus rounding the output to bf16 (8 significant
//         bits: half an ulp is at most 2^-8 relative);
//   fp16: rtol 2^-11 + 1e-5, atol 1e-5 — plus rounding to fp16 (11 significant bits); the
//         atol also covers fp16 subnormal outputs (spacing 2^-24).
#include "trainer/kernels/cpu/gelu.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/gelu.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;

// {atol, rtol} per compute type; see the top of the file.
constexpr gpu_test::ToleranceTable kTol{
    /*fp32=*/{1e-5f, 1e-5f},
    /*bf16=*/{1e-5f, 0x1.0p-8f + 1e-5f},
    /*fp16=*/{1e-5f, 0x1.0p-11f + 1e-5f},
};

template <typename floatX>
class GeluGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(GeluGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

// Runs forward and backward on N elements placed `offset` elements into their buffers
// (offset 1 makes every pointer misaligned: the scalar path).
template <typename floatX>
void CheckGelu(size_t N, size_t offset, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset));
  const std::vector<float> inp = RoundTo<floatX>(RandomNormal(N, 2.0f, seed));
  const std::vector<float> dout = RoundTo<floatX>(RandomNormal(N, 1.0f, seed + 1));
  std::vector<float> want_out(N), want_dinp(N, 0.0f);
  kernels::cpu::gelu_forward(want_out.data(), inp.data(), static_cast<int>(N));
  kernels::cpu::gelu_backward(want_dinp.data(), inp.data(), dout.data(), static_cast<int>(N));

  std::vector<floatX> inp_t(offset), dout_t(offset);
  for (float x : inp) inp_t.push_back(kernels::cuda::FromFloat<floatX>(x));
  for (float x : dout) dout_t.push_back(kernels::cuda::FromFloat<floatX>(x));
  DeviceBuffer<floatX> d_inp(inp_t), d_dout(dout_t), d_out(N + offset), d_dinp(N + offset);
  ASSERT_NE(d_inp.get(), nullptr);
  ASSERT_NE(d_dout.get(), nullptr);
  ASSERT_NE(d_out.get(), nullptr);
  ASSERT_NE(d_dinp.get(), nullptr);
  d_out.Fill(0xFF);  // NaN in all three types: a slot the kernel skips fails the check
  d_dinp.Fill(0xFF);
  ASSERT_TRUE(
      IsOk(kernels::cuda::gelu_forward<floatX>(d_out.get() + offset, d_inp.get() + offset, N, 0)));
  ASSERT_TRUE(IsOk(kernels::cuda::gelu_backward<floatX>(d_dinp.get() + offset, d_inp.get() + offset,
                                                        d_dout.get() + offset, N, 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got_out = gpu_test::ToFloat<floatX>(d_out.Download());
  std::vector<float> got_dinp = gpu_test::ToFloat<floatX>(d_dinp.Download());
  got_out.erase(got_out.begin(), got_out.begin() + offset);
  got_dinp.erase(got_dinp.begin(), got_dinp.begin() + offset);
  constexpr gpu_test::Tolerance tol = kTol.For<floatX>();
  EXPECT_EQ(CompareClose(got_out, want_out, tol), "") << "forward";
  EXPECT_EQ(CompareClose(got_dinp, want_dinp, tol), "") << "backward";
}

TYPED_TEST(GeluGpuTest, MatchesCpuOnMlpShape) {
  SKIP_WITHOUT_GPU();
  CheckGelu<TypeParam>(4 * 64 * 4 * 768, 0, 42);  // B=4, T=64, 4C with C=768
}

TYPED_TEST(GeluGpuTest, MatchesCpuOnAwkwardSizes) {
  SKIP_WITHOUT_GPU();
  CheckGelu<TypeParam>((1 << 20) + 3, 0, 7);  // vector body plus a 3-element tail
  CheckGelu<TypeParam>(5, 0, 8);              // shorter than one 16-byte pack
  CheckGelu<TypeParam>(1, 0, 9);
}

TYPED_TEST(GeluGpuTest, MatchesCpuOnMisalignedPointers) {
  SKIP_WITHOUT_GPU();
  CheckGelu<TypeParam>(100003, 1, 11);
}

}  // namespace
