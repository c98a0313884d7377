// cuda::softmax_cross_entropy_* against cpu::softmax_cross_entropy_* at fp32, bf16 and
// fp16, on GPT-2's padded vocabulary (V = 50257, Vp = 50304) and on a small vocabulary
// whose Vp is not a multiple of the vector width (scalar path). Both sides see the same
// floatX-rounded logits; the padded columns hold large values that must be ignored.
//
// Tolerances (|got - want| <= atol + rtol * |want|):
// - losses and lse (fp32 at every precision): atol 5e-5, rtol 1e-5. The GPU sums exp in
//   fp32 (tree), the CPU in double: ~1e-6 relative on the sum, ~1e-6 absolute on the log.
//   lse is checked against a float64 reference computed here.
// - gradient (in floatX; the CPU's fp32 forward+backward result is rounded to floatX): exp(x - lse)
//   vs exp(x - max) / sum differ by a few fp32 ulps (ulp(lse) for the +100 row), which
//   can flip the final rounding by one ulp of floatX:
//     fp32: atol 1e-9,   rtol 2e-5
//     bf16: atol 1e-9,   rtol 1e-2 (one bf16 ulp is at most 2^-7 relative)
//     fp16: atol 1.2e-7, rtol 2e-3 (one ulp is at most 2^-10 relative; small gradients
//           are fp16 subnormals, spaced 2^-24 = 6e-8)
// - padded columns of the gradient: exactly 0; forward leaves the logits bitwise intact;
//   no inf/nan anywhere (rows with a logit of 3e4 and a row shifted by +100).
#include "trainer/kernels/cpu/softmax_cross_entropy.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cuda/softmax_cross_entropy.cuh"

namespace {

using gpu_test::CompareClose;
using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using gpu_test::ToType;

// {atol, rtol}; see the top of the file.
constexpr gpu_test::ToleranceTable kGradTol{
    /*fp32=*/{1e-9f, 2e-5f},
    /*bf16=*/{1e-9f, 1e-2f},
    /*fp16=*/{1.2e-7f, 2e-3f},
};
constexpr gpu_test::Tolerance kLossTol{5e-5f, 1e-5f};
constexpr float kDloss = 2.5f;      // a loss scale over B*T; keeps fp16 gradients mostly normal
constexpr float kHugeLogit = 3e4f;  // representable in fp16 (max 65504); exp overflows

template <typename floatX>
class SoftmaxCrossEntropyGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(SoftmaxCrossEntropyGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

struct Shape {
  int N, V, Vp;
};

// Logits (N,Vp) with stddev 2, padding filled with large values, and special rows:
// 0: a huge logit at the target; 1: a huge logit elsewhere; 2: everything shifted by +100
// (naive exp overflows fp32 there). Targets uniform, the last one V-1.
void MakeInputs(const Shape& s, std::vector<float>* logits, std::vector<int>* targets) {
  *logits = RandomNormal(static_cast<size_t>(s.N) * s.Vp, 2.0f, 21);
  std::mt19937 rng(22);
  std::uniform_int_distribution<int> column(0, s.V - 1);
  targets->resize(s.N);
  for (int& t : *targets) t = column(rng);
  targets->back() = s.V - 1;
  for (int n = 0; n < s.N; ++n) {
    float* row = logits->data() + static_cast<size_t>(n) * s.Vp;
    for (int v = s.V; v < s.Vp; ++v) row[v] = 50.0f + v % 7;
  }
  auto at = [&](int n, int v) -> float& { return (*logits)[static_cast<size_t>(n) * s.Vp + v]; };
  at(0, (*targets)[0]) = kHugeLogit;
  at(1, ((*targets)[1] + 1) % s.V) = kHugeLogit;
  for (int v = 0; v < s.V; ++v) at(2, v) += 100.0f;
}

// float64 logsumexp over the first V columns of each row.
std::vector<float> ReferenceLse(const std::vector<float>& logits, const Shape& s) {
  std::vector<float> lse(s.N);
  for (int n = 0; n < s.N; ++n) {
    const float* row = logits.data() + static_cast<size_t>(n) * s.Vp;
    double m = -INFINITY, sum = 0.0;
    for (int v = 0; v < s.V; ++v) m = row[v] > m ? row[v] : m;
    for (int v = 0; v < s.V; ++v) sum += std::exp(static_cast<double>(row[v]) - m);
    lse[n] = static_cast<float>(m + std::log(sum));
  }
  return lse;
}

std::string FirstNonFinite(const std::vector<float>& x) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return "index " + std::to_string(i) + ": " + std::to_string(x[i]);
  }
  return "";
}

TYPED_TEST(SoftmaxCrossEntropyGpuTest, LossAndGradientMatchCpu) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  for (const Shape& s : {Shape{37, 50257, 50304}, Shape{19, 1001, 1003}}) {
    SCOPED_TRACE("N=" + std::to_string(s.N) + " V=" + std::to_string(s.V) +
                 " Vp=" + std::to_string(s.Vp));
    const size_t NVp = static_cast<size_t>(s.N) * s.Vp;
    std::vector<float> logits;
    std::vector<int> targets;
    MakeInputs(s, &logits, &targets);
    logits = RoundTo<floatX>(logits);

    // CPU: forward turns the logits into probabilities, backward into gradients.
    std::vector<float> losses_cpu(s.N), grad_cpu = logits;
    kernels::cpu::softmax_cross_entropy_forward(losses_cpu.data(), grad_cpu.data(), targets.data(),
                                                s.N, s.V, s.Vp);
    kernels::cpu::softmax_cross_entropy_backward(grad_cpu.data(), targets.data(), s.N, s.V, s.Vp,
                                                 kDloss);

    const std::vector<floatX> logits_t = ToType<floatX>(logits);
    DeviceBuffer<floatX> d_logits(logits_t);
    DeviceBuffer<int> d_targets(targets);
    DeviceBuffer<float> d_losses(s.N), d_lse(s.N);
    ASSERT_TRUE(IsOk(kernels::cuda::softmax_cross_entropy_forward<floatX>(
        d_losses.get(), d_lse.get(), d_logits.get(), d_targets.get(), s.N, s.V, s.Vp, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<floatX> logits_after = d_logits.Download();
    EXPECT_EQ(std::memcmp(logits_after.data(), logits_t.data(), NVp * sizeof(floatX)), 0)
        << "forward changed the logits";
    const std::vector<float> losses = d_losses.Download(), lse = d_lse.Download();
    EXPECT_EQ(FirstNonFinite(losses), "") << "losses";
    EXPECT_EQ(CompareClose(losses, losses_cpu, kLossTol), "") << "losses";
    EXPECT_EQ(CompareClose(lse, ReferenceLse(logits, s), kLossTol), "") << "lse";

    ASSERT_TRUE(IsOk(kernels::cuda::softmax_cross_entropy_backward<floatX>(
        d_logits.get(), d_lse.get(), d_targets.get(), s.N, s.V, s.Vp, kDloss, nullptr)));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> grad = gpu_test::ToFloat<floatX>(d_logits.Download());
    EXPECT_EQ(FirstNonFinite(grad), "") << "gradient";
    EXPECT_EQ(CompareClose(grad, RoundTo<floatX>(grad_cpu), kGradTol.For<floatX>()), "")
        << "gradient";
    int nonzero_padding = 0;
    for (int n = 0; n < s.N; ++n) {
      for (int v = s.V; v < s.Vp; ++v)
        nonzero_padding += grad[static_cast<size_t>(n) * s.Vp + v] != 0.0f;
    }
    EXPECT_EQ(nonzero_padding, 0) << "padded columns must get exactly 0";
    // The huge-logit rows: the softmax is one-hot there, so loss 0 at the target and
    // gradient -dloss at the target / +dloss at the huge column elsewhere.
    EXPECT_EQ(losses[0], 0.0f);
    EXPECT_EQ(grad[static_cast<size_t>(1) * s.Vp + targets[1]], -kDloss);
    EXPECT_EQ(grad[static_cast<size_t>(1) * s.Vp + (targets[1] + 1) % s.V], kDloss);
  }
}

}  // namespace
