// cuda::rope_* against cpu::rope_* at fp32, bf16 and fp16 on the same floatX-rounded QKV
// rows, in both layouts (plain [q | k | v] and the grouped GQA one) and with given
// positions (a packed batch). Both use the CPU's fp32 cos/sin table. Tolerances: fp32
// atol 1e-6 rtol 1e-5 (two products and a sum, FMA contraction may differ); bf16 /
// fp16 one ulp of the output's rounding (rtol 2^-7 / 2^-10). v must come back untouched,
// bit for bit.
#include "trainer/kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/rope.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;
using kernels::cpu::QkvLayout;

constexpr gpu_test::ToleranceTable kTol{
    /*fp32=*/{1e-6f, 1e-5f},
    /*bf16=*/{1e-6f, 0x1.0p-7f},
    /*fp16=*/{1e-6f, 0x1.0p-10f},
};

template <typename floatX>
class RopeGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(RopeGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

template <typename floatX>
void CheckRope(const QkvLayout& l, int B, int T, bool packed) {
  SCOPED_TRACE("NH=" + std::to_string(l.NH) + " KV=" + std::to_string(l.KV) +
               (l.grouped ? " grouped" : " plain") + (packed ? " packed" : ""));
  const int P = 4096, half = l.HS / 2;
  std::vector<float> cos(static_cast<size_t>(P) * half), sin(cos.size());
  kernels::cpu::rope_table(cos.data(), sin.data(), P, l.HS, 1e6f);
  std::vector<int> pos;
  if (packed) {
    for (int bt = 0; bt < B * T; ++bt) pos.push_back((bt * 7) % (T / 2 + 1));
  }
  const size_t n = static_cast<size_t>(B) * T * l.row();
  const std::vector<float> x = RoundTo<floatX>(RandomNormal(n, 1.0f, 11));
  for (int direction = 0; direction < 2; ++direction) {
    std::vector<float> want = x;
    if (direction == 0) {
      kernels::cpu::rope_forward(want.data(), cos.data(), sin.data(), B, T, l,
                                 packed ? pos.data() : nullptr);
    } else {
      kernels::cpu::rope_backward(want.data(), cos.data(), sin.data(), B, T, l,
                                  packed ? pos.data() : nullptr);
    }
    DeviceBuffer<floatX> d_x(ToType<floatX>(x));
    DeviceBuffer<float> d_cos(cos), d_sin(sin);
    DeviceBuffer<int> d_pos(packed ? pos : std::vector<int>(1, 0));
    const int* p = packed ? d_pos.get() : nullptr;
    ASSERT_TRUE(IsOk(direction == 0 ? kernels::cuda::rope_forward<floatX>(
                                          d_x.get(), d_cos.get(), d_sin.get(), B, T, l, p, nullptr)
                                    : kernels::cuda::rope_backward<floatX>(
                                          d_x.get(), d_cos.get(), d_sin.get(), B, T, l, p,
                                          nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = gpu_test::ToFloat<floatX>(d_x.Download());
    EXPECT_EQ(CompareClose(got, RoundTo<floatX>(want), kTol.For<floatX>()), "")
        << (direction == 0 ? "forward" : "backward");
    for (int bt = 0; bt < B * T; ++bt) {
      for (int g = 0; g < l.KV; ++g) {
        const size_t at = static_cast<size_t>(bt) * l.row() + l.v(g);
        ASSERT_EQ(std::memcmp(&got[at], &x[at], l.HS * sizeof(float)), 0) << "v of token " << bt;
      }
    }
  }
}

TYPED_TEST(RopeGpuTest, MatchesCpuInBothLayoutsAndWithPositions) {
  SKIP_WITHOUT_GPU();
  CheckRope<TypeParam>(QkvLayout::Make(14 * 64, 14, 2), 2, 128, false);  // Qwen2.5-0.5B, grouped
  CheckRope<TypeParam>(QkvLayout::Make(8 * 128, 8, 0), 2, 64, false);    // plain, no GQA
  CheckRope<TypeParam>(QkvLayout::Make(4 * 64, 4, 1), 3, 40, true);      // one group, packed
}

}  // namespace
