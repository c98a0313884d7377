// cuda::adamw_update<floatX> against cpu::adamw_update, for fp32 (params_copy null) and for
// bf16 / fp16 (params_copy written). The CPU is fed fp32(grads * grad_scale), which is the
// GPU's first operation. Several steps run back to back on both sides (bias corrections
// at steps 1, 2, ..., 10), with weight decay on and off and grad_scale 1 and != 1.
// Tolerances:
//   master, m, v: rtol 1e-6, atol 1e-12. The kernel performs the CPU's fp32 operations in
//     the same order with explicitly rounded intrinsics (no FMA contraction) and the same
//     host-computed bias-correction scalars, so the values are expected to be bitwise
//     equal; 1e-6 (~8 fp32 ulp) leaves room for a host compiler that contracts the CPU
//     twin into FMAs, and still catches any operation-order or bias-correction mistake.
//   params_copy: exact, == FromFloat<floatX>(the GPU's master) (round to nearest even).
#include "trainer/kernels/cpu/adamw.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/adamw.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;

constexpr gpu_test::Tolerance kTol{/*atol=*/1e-12f, /*rtol=*/1e-6f};  // every compute type

template <typename floatX>
class AdamWGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(AdamWGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

struct Hyper {
  float lr = 6e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  float grad_scale = 1.0f;
};

// The last n elements of a device buffer.
template <typename U>
std::vector<U> Tail(const DeviceBuffer<U>& buf, size_t n) {
  std::vector<U> all = buf.Download();
  return std::vector<U>(all.end() - n, all.end());
}

// `steps` updates of N parameters placed `offset` elements into their buffers (1 makes
// every pointer misaligned: the scalar path), compared after steps 1, 2 and the last.
template <typename floatX>
void CheckAdamW(size_t N, size_t offset, const Hyper& h, int steps, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset) + " wd=" +
               std::to_string(h.weight_decay) + " grad_scale=" + std::to_string(h.grad_scale));
  constexpr bool kHasCopy = !std::is_same_v<floatX, float>;
  std::vector<float> master = RandomNormal(N, 0.02f, seed);
  std::vector<float> m(N, 0.0f), v(N, 0.0f);

  auto padded = [offset](const std::vector<float>& x) {
    std::vector<float> out(offset, 0.0f);
    out.insert(out.end(), x.begin(), x.end());
    return out;
  };
  DeviceBuffer<float> d_master(padded(master)), d_m(padded(m)), d_v(padded(v));
  DeviceBuffer<float> d_grads(N + offset);
  DeviceBuffer<floatX> d_copy(N + offset);
  ASSERT_NE(d_master.get(), nullptr);
  ASSERT_NE(d_m.get(), nullptr);
  ASSERT_NE(d_v.get(), nullptr);
  ASSERT_NE(d_grads.get(), nullptr);
  ASSERT_NE(d_copy.get(), nullptr);
  d_copy.Fill(0xFF);  // NaN: an unwritten slot fails the copy check

  for (int step = 1; step <= steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    // Gradients of varied magnitude (some tiny, so v is small against eps).
    std::vector<float> grads = RandomNormal(N, 1.0f, seed + 100 * step);
    for (size_t i = 0; i < N; i += 7) grads[i] *= 1e-5f;
    d_grads.Upload(padded(grads));
    std::vector<float> scaled(N);
    for (size_t i = 0; i < N; ++i) scaled[i] = grads[i] * h.grad_scale;
    kernels::cpu::adamw_update(master.data(), scaled.data(), m.data(), v.data(), N, h.lr, h.beta1,
                               h.beta2, h.eps, h.weight_decay, step);
    ASSERT_TRUE(IsOk(kernels::cuda::adamw_update<floatX>(
        d_master.get() + offset, kHasCopy ? d_copy.get() + offset : nullptr, d_grads.get() + offset,
        d_m.get() + offset, d_v.get() + offset, N, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay,
        step, h.grad_scale, 0)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (step > 2 && step < steps) continue;

    const std::vector<float> got_master = Tail(d_master, N);
    ASSERT_EQ(CompareClose(got_master, master, kTol), "") << "master";
    ASSERT_EQ(CompareClose(Tail(d_m, N), m, kTol), "") << "m";
    ASSERT_EQ(CompareClose(Tail(d_v, N), v, kTol), "") << "v";
    if constexpr (kHasCopy) {
      const std::vector<floatX> got_copy = Tail(d_copy, N);
      for (size_t i = 0; i < N; ++i) {
        const floatX want = kernels::cuda::FromFloat<floatX>(got_master[i]);
        ASSERT_EQ(std::memcmp(&got_copy[i], &want, sizeof(floatX)), 0)
            << "params_copy[" << i << "] = " << kernels::cuda::ToFloat<floatX>(got_copy[i])
            << ", master " << got_master[i];
      }
    }
  }
}

TYPED_TEST(AdamWGpuTest, MatchesCpuWithWeightDecay) {
  SKIP_WITHOUT_GPU();
  Hyper h;
  CheckAdamW<TypeParam>((1 << 20) + 3, 0, h, 10, 1);  // vector body plus a 3-element tail
}

TYPED_TEST(AdamWGpuTest, MatchesCpuWithoutWeightDecay) {
  SKIP_WITHOUT_GPU();
  Hyper h;
  h.weight_decay = 0.0f;
  CheckAdamW<TypeParam>(100003, 0, h, 10, 2);
}

// grad_scale folds 1/loss_scale and the clip coefficient; not a power of two, so the
// product rounds.
TYPED_TEST(AdamWGpuTest, MatchesCpuWithGradScale) {
  SKIP_WITHOUT_GPU();
  Hyper h;
  h.grad_scale = 0.3712f / 1024.0f;
  CheckAdamW<TypeParam>(100003, 0, h, 10, 3);
  h.grad_scale = 1.7f;
  h.weight_decay = 0.0f;
  CheckAdamW<TypeParam>(4099, 0, h, 3, 4);
}

TYPED_TEST(AdamWGpuTest, MatchesCpuOnMisalignedAndTinyRanges) {
  SKIP_WITHOUT_GPU();
  Hyper h;
  h.grad_scale = 0.5f;
  CheckAdamW<TypeParam>(10007, 1, h, 10, 5);  // scalar path
  CheckAdamW<TypeParam>(3, 0, h, 2, 6);       // shorter than one 4-element chunk
  CheckAdamW<TypeParam>(1, 1, h, 2, 7);
}

TYPED_TEST(AdamWGpuTest, RejectsStepZero) {
  SKIP_WITHOUT_GPU();
  DeviceBuffer<float> d(8);
  EXPECT_FALSE(kernels::cuda::adamw_update<TypeParam>(d.get(), nullptr, d.get(), d.get(), d.get(),
                                                      8, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 0, 1.0f,
                                                      0)
                   .ok());
}

}  // namespace
