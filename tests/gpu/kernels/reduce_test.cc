// cuda::sum_of_squares and cuda::scale_in_place (fp32 gradient buffer only).
// The reference sum of squares is computed here in double with compensated (Neumaier)
// summation, accurate to a few double ulp (trainer::SumOfSquares lives in trainer_core,
// which this test does not link). Tolerance: 1e-13 relative. The GPU sums non-negative
// exact double squares along ~60 levels (a ~40-term chain per thread, then the block and
// final trees), so its relative error is at most ~60 * 2^-53 ~ 7e-15.
// scale_in_place is one IEEE fp32 multiply per element: compared bitwise with the host.
// Determinism is checked bitwise: two runs, and the same data at another alignment.
#include "trainer/kernels/cuda/reduce.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"

namespace {

using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;

double ReferenceSumOfSquares(const std::vector<float>& x) {
  double sum = 0.0, compensation = 0.0;
  for (float v : x) {
    const double term = static_cast<double>(v) * v;  // exact
    const double t = sum + term;
    compensation += std::fabs(sum) >= term ? (sum - t) + term : (term - t) + sum;
    sum = t;
  }
  return sum + compensation;
}

// Runs sum_of_squares on x placed `offset` floats into a device buffer, adding into
// `initial`; returns the device result.
double GpuSumOfSquares(const std::vector<float>& x, size_t offset, double initial) {
  std::vector<float> host(offset, 0.0f);
  host.insert(host.end(), x.begin(), x.end());
  DeviceBuffer<float> d_x(host);
  DeviceBuffer<double> d_out(std::vector<double>{initial});
  DeviceBuffer<double> scratch(kernels::cuda::reduce_scratch_doubles());
  EXPECT_NE(d_x.get(), nullptr);
  EXPECT_NE(scratch.get(), nullptr);
  EXPECT_TRUE(IsOk(
      kernels::cuda::sum_of_squares(d_out.get(), d_x.get() + offset, x.size(), scratch.get(), 0)));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return d_out.Download()[0];
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

TEST(SumOfSquaresGpuTest, MatchesDoubleReference) {
  SKIP_WITHOUT_GPU();
  const size_t sizes[] = {1, 3, 4, 1023, 1000003, 10000019};
  uint32_t seed = 1;
  for (size_t n : sizes) {
    SCOPED_TRACE("N=" + std::to_string(n));
    const std::vector<float> x = RandomNormal(n, 0.01f, seed++);
    const double want = ReferenceSumOfSquares(x);
    const double got = GpuSumOfSquares(x, 0, 0.0);
    EXPECT_NEAR(got, want, 1e-13 * want);
    const double got_misaligned = GpuSumOfSquares(x, 1, 0.0);
    EXPECT_NEAR(got_misaligned, want, 1e-13 * want);
  }
}

TEST(SumOfSquaresGpuTest, AddsIntoOutput) {
  SKIP_WITHOUT_GPU();
  const std::vector<float> x = RandomNormal(100003, 1.0f, 17);
  const double sum = ReferenceSumOfSquares(x);
  const double got = GpuSumOfSquares(x, 0, 1234.5);
  EXPECT_NEAR(got, 1234.5 + sum, 1e-13 * (1234.5 + sum));
}

TEST(SumOfSquaresGpuTest, ZeroLengthLeavesOutputUnchanged) {
  SKIP_WITHOUT_GPU();
  EXPECT_EQ(GpuSumOfSquares({}, 0, 42.0), 42.0);
}

// The fp16 overflow check: one inf or NaN anywhere makes the result non-finite.
TEST(SumOfSquaresGpuTest, NonFiniteValuesPropagate) {
  SKIP_WITHOUT_GPU();
  const size_t n = 1000003;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const size_t positions[] = {0, 123457, n - 1};  // first, middle (mid-vector), tail
  for (size_t pos : positions) {
    for (float bad : {inf, -inf, nan}) {
      SCOPED_TRACE("pos=" + std::to_string(pos) + " value=" + std::to_string(bad));
      std::vector<float> x = RandomNormal(n, 1.0f, 5);
      x[pos] = bad;
      const double got = GpuSumOfSquares(x, 0, 0.0);
      EXPECT_FALSE(std::isfinite(got)) << got;
      if (std::isnan(bad)) {
        EXPECT_TRUE(std::isnan(got)) << got;
      }
      EXPECT_FALSE(std::isfinite(GpuSumOfSquares(x, 1, 0.0)));
    }
  }
  // Large but finite values stay finite (squares are taken in double).
  std::vector<float> big(4099, std::numeric_limits<float>::max());
  EXPECT_TRUE(std::isfinite(GpuSumOfSquares(big, 0, 0.0)));
}

TEST(SumOfSquaresGpuTest, DeterministicAcrossRunsAndAlignment) {
  SKIP_WITHOUT_GPU();
  for (size_t n : {size_t{1000003}, size_t{10000019}}) {
    SCOPED_TRACE("N=" + std::to_string(n));
    const std::vector<float> x = RandomNormal(n, 3.0f, 99);
    const double a = GpuSumOfSquares(x, 0, 0.0);
    const double b = GpuSumOfSquares(x, 0, 0.0);
    EXPECT_TRUE(SameBits(a, b)) << a << " vs " << b;
    // Alignment only changes how a thread loads its chunk, not which elements it sums.
    const double c = GpuSumOfSquares(x, 1, 0.0);
    const double d = GpuSumOfSquares(x, 3, 0.0);
    EXPECT_TRUE(SameBits(a, c)) << a << " vs " << c;
    EXPECT_TRUE(SameBits(a, d)) << a << " vs " << d;
  }
}

TEST(ScaleInPlaceGpuTest, MatchesHostMultiply) {
  SKIP_WITHOUT_GPU();
  const float coef = 0.3712f;
  for (size_t n : {size_t{1}, size_t{7}, size_t{1000003}}) {
    for (size_t offset : {size_t{0}, size_t{1}}) {
      SCOPED_TRACE("N=" + std::to_string(n) + " offset=" + std::to_string(offset));
      std::vector<float> x(offset, 5.0f);
      const std::vector<float> body = RandomNormal(n, 2.0f, 31);
      x.insert(x.end(), body.begin(), body.end());
      DeviceBuffer<float> d_x(x);
      ASSERT_NE(d_x.get(), nullptr);
      ASSERT_TRUE(IsOk(kernels::cuda::scale_in_place(d_x.get() + offset, n, coef, 0)));
      const std::vector<float> got = d_x.Download();
      for (size_t i = 0; i < offset; ++i) ASSERT_EQ(got[i], 5.0f) << "wrote before the range";
      for (size_t i = 0; i < n; ++i) {
        const float want = body[i] * coef;
        ASSERT_EQ(std::memcmp(&got[offset + i], &want, sizeof(float)), 0)
            << i << ": " << got[offset + i] << " vs " << want;
      }
    }
  }
}

}  // namespace
