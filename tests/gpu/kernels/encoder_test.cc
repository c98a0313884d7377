// cuda::encoder_* against cpu::encoder_* at fp32, bf16 and fp16.
//
// Tolerance: none, all comparisons are bitwise (for every precision).
// - forward: both sides add the same two floatX-rounded values in fp32 and the GPU rounds
//   once to floatX; the CPU result is rounded to floatX the same way before comparing.
// - backward: the gradients are fp32 and both sides add the same dout values onto the
//   existing gradient in the same order ((b,t) order per dwte row, b order per dwpe
//   row), so the sums are identical. This also pins down determinism; the backward is
//   additionally run twice on the GPU and compared bit for bit.
#include "trainer/kernels/cpu/encoder.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/encoder.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

constexpr gpu_test::Tolerance kExact{0.0f, 0.0f};  // every compute type

template <typename floatX>
class EncoderGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(EncoderGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

struct Shape {
  int B, T, maxT, C, Vp;
  int token_range;  // ids drawn from [0, token_range): small means many repeats
};

std::string Describe(const Shape& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C) +
         " Vp=" + std::to_string(s.Vp) + " tokens<" + std::to_string(s.token_range);
}

std::vector<int> RandomTokens(size_t n, int range, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, range - 1);
  std::vector<int> v(n);
  for (int& x : v) x = dist(rng);
  return v;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TYPED_TEST(EncoderGpuTest, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  // C = 768: vectorized path; C = 770: not a multiple of the vector width (scalar path).
  for (const Shape& s : {Shape{4, 67, 80, 768, 1000, 1000}, Shape{3, 33, 33, 770, 97, 97}}) {
    SCOPED_TRACE(Describe(s));
    const size_t BT = static_cast<size_t>(s.B) * s.T;
    const std::vector<float> wte = RoundTo<floatX>(RandomNormal(size_t{1} * s.Vp * s.C, 0.5f, 1));
    const std::vector<float> wpe = RoundTo<floatX>(RandomNormal(size_t{1} * s.maxT * s.C, 0.5f, 2));
    const std::vector<int> tokens = RandomTokens(BT, s.token_range, 3);

    std::vector<float> out_cpu(BT * s.C);
    kernels::cpu::encoder_forward(out_cpu.data(), tokens.data(), wte.data(), wpe.data(), s.B, s.T,
                                  s.C);

    DeviceBuffer<floatX> d_wte(ToType<floatX>(wte)), d_wpe(ToType<floatX>(wpe)), d_out(BT * s.C);
    DeviceBuffer<int> d_tokens(tokens);
    ASSERT_TRUE(IsOk(kernels::cuda::encoder_forward<floatX>(
        d_out.get(), d_tokens.get(), d_wte.get(), d_wpe.get(), s.B, s.T, s.C, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(
        CompareClose(gpu_test::ToFloat<floatX>(d_out.Download()), RoundTo<floatX>(out_cpu), kExact),
        "");
  }
}

// dwte/dwpe start from `dwte_init`/`dwpe_init` (non-zero: the backward accumulates).
template <typename floatX>
void RunGpuBackward(const Shape& s, const std::vector<float>& dwte_init,
                    const std::vector<float>& dwpe_init, const std::vector<float>& dout,
                    const std::vector<int>& tokens, std::vector<float>* dwte,
                    std::vector<float>* dwpe) {
  DeviceBuffer<float> d_dwte(dwte_init), d_dwpe(dwpe_init);
  DeviceBuffer<floatX> d_dout(ToType<floatX>(dout));
  DeviceBuffer<int> d_tokens(tokens);
  DeviceBuffer<char> scratch(kernels::cuda::encoder_backward_scratch_bytes(s.B, s.T));
  ASSERT_NE(scratch.get(), nullptr);
  ASSERT_TRUE(IsOk(kernels::cuda::encoder_backward<floatX>(d_dwte.get(), d_dwpe.get(), d_dout.get(),
                                                           d_tokens.get(), s.B, s.T, s.C,
                                                           scratch.get(), nullptr)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  *dwte = d_dwte.Download();
  *dwpe = d_dwpe.Download();
}

TYPED_TEST(EncoderGpuTest, BackwardMatchesCpuAndIsDeterministic) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  const Shape shapes[] = {
      Shape{4, 64, 64, 768, 50, 5},         // runs of ~50 equal tokens
      Shape{8, 256, 300, 768, 4096, 4096},  // realistic spread, some repeats
      Shape{2, 37, 40, 770, 13, 3},         // scalar path, runs of ~25
      Shape{1, 17, 17, 64, 8, 1},           // a single token everywhere
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE(Describe(s));
    const size_t BT = static_cast<size_t>(s.B) * s.T;
    const std::vector<float> dwte_init = RandomNormal(size_t{1} * s.Vp * s.C, 0.1f, 4);
    const std::vector<float> dwpe_init = RandomNormal(size_t{1} * s.maxT * s.C, 0.1f, 5);
    const std::vector<float> dout = RoundTo<floatX>(RandomNormal(BT * s.C, 1.0f, 6));
    const std::vector<int> tokens = RandomTokens(BT, s.token_range, 7);

    std::vector<float> dwte_cpu = dwte_init, dwpe_cpu = dwpe_init;
    kernels::cpu::encoder_backward(dwte_cpu.data(), dwpe_cpu.data(), dout.data(), tokens.data(),
                                   s.B, s.T, s.C);

    std::vector<float> dwte, dwpe, dwte_again, dwpe_again;
    RunGpuBackward<floatX>(s, dwte_init, dwpe_init, dout, tokens, &dwte, &dwpe);
    RunGpuBackward<floatX>(s, dwte_init, dwpe_init, dout, tokens, &dwte_again, &dwpe_again);
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_EQ(CompareClose(dwte, dwte_cpu, kExact), "") << "dwte";
    EXPECT_EQ(CompareClose(dwpe, dwpe_cpu, kExact), "") << "dwpe";
    EXPECT_TRUE(BitwiseEqual(dwte, dwte_again)) << "dwte differs between two runs";
    EXPECT_TRUE(BitwiseEqual(dwpe, dwpe_again)) << "dwpe differs between two runs";
  }
}

}  // namespace
