// Elementwise CUDA ops against their CPU twins, for fp32, bf16 and fp16:
//   residual_dropout_forward<floatX> vs cpu::dropout_forward then cpu::residual_forward,
//   dropout_forward<floatX> vs cpu::dropout_forward, cast_from_float / cast_to_float vs the host
//   FromFloat / ToFloat.
// Tolerance: none — every comparison is exact. The inputs are rounded to floatX first, both
// sides compute the same fp32 operations (x * 1/(1-p), then residual + that, explicitly
// rounded on the GPU so no FMA is formed) on the same Philox masks, and the CPU result is
// rounded to floatX once as the GPU's is. For dropout the kept/dropped pattern is also
// checked on its own (which elements are zero), since that is the cross-device contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/core/philox.h"
#include "trainer/kernels/cpu/dropout.h"
#include "trainer/kernels/cpu/residual.h"
#include "trainer/kernels/cuda/cast.cuh"
#include "trainer/kernels/cuda/dropout.cuh"
#include "trainer/kernels/cuda/residual.cuh"

namespace {

using gpu_test::DeviceBuffer;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;
using kernels::cuda::FromFloat;

// Host values as floatX, placed `offset` elements into the device buffer.
template <typename floatX>
std::vector<floatX> WithOffset(const std::vector<float>& x, size_t offset) {
  std::vector<floatX> out(offset, FromFloat<floatX>(0.0f));
  for (float v : x) out.push_back(FromFloat<floatX>(v));
  return out;
}

// The last n elements of a device buffer, as floats.
template <typename floatX>
std::vector<float> DownloadTail(const DeviceBuffer<floatX>& buf, size_t n) {
  std::vector<float> all = gpu_test::ToFloat<floatX>(buf.Download());
  return std::vector<float>(all.end() - n, all.end());
}

// "" or the first index where got and want differ (bitwise on the float values, so
// -0 vs +0 counts; NaN never occurs in these inputs).
std::string FirstDifference(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return "size mismatch";
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return "index " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
             std::to_string(want[i]);
    }
  }
  return "";
}

// Random normal values rounded to floatX with no exact zeros (a tiny value can round to zero
// in fp16), so a zero in a dropout output means dropped.
template <typename floatX>
std::vector<float> NonZeroNormalAs(size_t n, float stddev, uint32_t seed) {
  std::vector<float> x = RoundTo<floatX>(RandomNormal(n, stddev, seed));
  for (float& v : x) {
    if (v == 0.0f) v = 1.0f;
  }
  return x;
}

struct MaskCase {
  size_t N;
  size_t row_elems;
  size_t offset;  // elements; 1 misaligns every pointer (scalar path)
};

// Shapes: the model's (B rows of T*C, C = 768), one whole-tensor stream with an odd N,
// odd rows (3*257) that break every 4-element group, a partial last row, misalignment.
const MaskCase kMaskCases[] = {
    {4 * 64 * 768, 64 * 768, 0},  // B = 4 rows of T * C (T = 64, C = 768)
    {1000003, 0, 0},              // one stream for the whole tensor, odd N
    {5 * 771, 771, 0},            // rows of 3 * 257, not a multiple of 4: scalar path
    {5 * 771 + 100, 771, 0},      // partial last row
    {8 * 1024 + 4, 1024, 0},      // vector rows plus a 4-element last row
    {3 * 1024, 1024, 1},          // misaligned pointers
    {4099, 0, 1},                 // misaligned, one stream
    {3, 0, 0},                    // shorter than one Philox block
};

// ---------------------------------------------------------------------------
// residual_dropout_forward

template <typename floatX>
class ResidualDropoutGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(ResidualDropoutGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

// out_alias: 0 separate output, 1 out == residual, 2 out == x.
template <typename floatX>
void CheckResidualDropout(const MaskCase& c, float p, int out_alias, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(c.N) + " row_elems=" + std::to_string(c.row_elems) +
               " offset=" + std::to_string(c.offset) + " p=" + std::to_string(p) +
               " alias=" + std::to_string(out_alias));
  const trainer::RngStream rng{0x1234abcdULL, 7ull << 24};
  const std::vector<float> residual = RoundTo<floatX>(RandomNormal(c.N, 1.0f, seed));
  const std::vector<float> x = NonZeroNormalAs<floatX>(c.N, 1.0f, seed + 1);
  std::vector<float> dropped(c.N), want(c.N);
  kernels::cpu::dropout_forward(dropped.data(), x.data(), c.N, p, rng, c.row_elems);
  kernels::cpu::residual_forward(want.data(), residual.data(), dropped.data(), c.N);
  want = RoundTo<floatX>(want);

  DeviceBuffer<floatX> d_res(WithOffset<floatX>(residual, c.offset)),
      d_x(WithOffset<floatX>(x, c.offset));
  DeviceBuffer<floatX> d_out(c.N + c.offset);
  ASSERT_NE(d_res.get(), nullptr);
  ASSERT_NE(d_x.get(), nullptr);
  ASSERT_NE(d_out.get(), nullptr);
  d_out.Fill(0xFF);
  const DeviceBuffer<floatX>& result = out_alias == 1 ? d_res : out_alias == 2 ? d_x : d_out;
  ASSERT_TRUE(IsOk(kernels::cuda::residual_dropout_forward<floatX>(
      result.get() + c.offset, d_res.get() + c.offset, d_x.get() + c.offset, c.N, p, rng,
      c.row_elems, 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(FirstDifference(DownloadTail(result, c.N), want), "");
}

TYPED_TEST(ResidualDropoutGpuTest, PlainAddMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (const MaskCase& c : kMaskCases) CheckResidualDropout<TypeParam>(c, 0.0f, 0, seed += 2);
}

TYPED_TEST(ResidualDropoutGpuTest, DropoutMatchesCpuMasks) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  for (const MaskCase& c : kMaskCases) CheckResidualDropout<TypeParam>(c, 0.1f, 0, seed += 2);
}

TYPED_TEST(ResidualDropoutGpuTest, OutputMayAliasEitherInput) {
  SKIP_WITHOUT_GPU();
  for (float p : {0.0f, 0.1f}) {
    CheckResidualDropout<TypeParam>({4 * 64 * 768, 64 * 768, 0}, p, 1, 300);
    CheckResidualDropout<TypeParam>({4 * 64 * 768, 64 * 768, 0}, p, 2, 302);
    CheckResidualDropout<TypeParam>({5 * 771, 771, 1}, p, 1, 304);
  }
}

// ---------------------------------------------------------------------------
// dropout_forward

template <typename floatX>
class DropoutGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(DropoutGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

template <typename floatX>
void CheckDropout(const MaskCase& c, float p, bool in_place, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(c.N) + " row_elems=" + std::to_string(c.row_elems) +
               " offset=" + std::to_string(c.offset) + " p=" + std::to_string(p) +
               " in_place=" + std::to_string(in_place));
  const trainer::RngStream rng{987654321ULL, 3};
  const std::vector<float> x = NonZeroNormalAs<floatX>(c.N, 1.0f, seed);
  std::vector<float> want(c.N);
  kernels::cpu::dropout_forward(want.data(), x.data(), c.N, p, rng, c.row_elems);
  want = RoundTo<floatX>(want);

  DeviceBuffer<floatX> d_x(WithOffset<floatX>(x, c.offset)), d_out(c.N + c.offset);
  ASSERT_NE(d_x.get(), nullptr);
  ASSERT_NE(d_out.get(), nullptr);
  d_out.Fill(0xFF);
  const DeviceBuffer<floatX>& result = in_place ? d_x : d_out;
  ASSERT_TRUE(IsOk(kernels::cuda::dropout_forward<floatX>(
      result.get() + c.offset, d_x.get() + c.offset, c.N, p, rng, c.row_elems, 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = DownloadTail(result, c.N);

  // The mask itself: dropped exactly where the CPU dropped (inputs have no zeros).
  size_t dropped = 0;
  for (size_t i = 0; i < c.N; ++i) {
    ASSERT_EQ(got[i] == 0.0f, want[i] == 0.0f) << "mask differs at index " << i;
    dropped += want[i] == 0.0f;
  }
  EXPECT_EQ(FirstDifference(got, want), "");
  if (c.N >= 10000) {  // the masks are not vacuous: about p of the elements are dropped
    EXPECT_NEAR(static_cast<double>(dropped) / c.N, p, 0.01);
  }
}

TYPED_TEST(DropoutGpuTest, MasksMatchCpuExactly) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 400;
  for (float p : {0.1f, 0.5f}) {
    for (const MaskCase& c : kMaskCases) CheckDropout<TypeParam>(c, p, false, seed += 1);
  }
}

TYPED_TEST(DropoutGpuTest, InPlaceAndZeroRate) {
  SKIP_WITHOUT_GPU();
  CheckDropout<TypeParam>({4 * 64 * 768, 64 * 768, 0}, 0.1f, true, 500);
  CheckDropout<TypeParam>({5 * 771 + 100, 771, 1}, 0.1f, true, 501);
  CheckDropout<TypeParam>({4 * 64 * 768, 64 * 768, 0}, 0.0f, false, 502);
  CheckDropout<TypeParam>({1000003, 0, 0}, 0.0f, true, 503);
}

TYPED_TEST(DropoutGpuTest, RejectsRateOutsideUnitInterval) {
  SKIP_WITHOUT_GPU();
  DeviceBuffer<TypeParam> d(16);
  const trainer::RngStream rng{1, 2};
  EXPECT_FALSE(
      kernels::cuda::dropout_forward<TypeParam>(d.get(), d.get(), 16, 1.0f, rng, 0, 0).ok());
  EXPECT_FALSE(
      kernels::cuda::dropout_forward<TypeParam>(d.get(), d.get(), 16, -0.1f, rng, 0, 0).ok());
}

// ---------------------------------------------------------------------------
// cast_from_float / cast_to_float

template <typename floatX>
class CastGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(CastGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

// Bitwise equality of floatX values, with any NaN equal to any NaN (payloads may differ
// between host and device conversions).
template <typename floatX>
std::string FirstDifferenceT(const std::vector<floatX>& got, const std::vector<floatX>& want) {
  if (got.size() != want.size()) return "size mismatch";
  for (size_t i = 0; i < got.size(); ++i) {
    const float g = kernels::cuda::ToFloat<floatX>(got[i]),
                w = kernels::cuda::ToFloat<floatX>(want[i]);
    if (std::isnan(g) && std::isnan(w)) continue;
    if (std::memcmp(&got[i], &want[i], sizeof(floatX)) != 0) {
      return "index " + std::to_string(i) + ": got " + std::to_string(g) + ", want " +
             std::to_string(w);
    }
  }
  return "";
}

std::string FirstDifferenceFloat(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return "size mismatch";
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return "index " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
             std::to_string(want[i]);
    }
  }
  return "";
}

// Random values across many magnitudes plus the edge cases of the conversions: signed
// zeros, fp32 and fp16 subnormals, fp16 overflow (65520 rounds to inf), round-to-even
// ties of bf16 and fp16, infinities and NaN.
std::vector<float> CastInputs(size_t n, uint32_t seed) {
  std::vector<float> x = RandomNormal(n, 1.0f, seed);
  const float scales[] = {1.0f, 1e-6f, 1e-3f, 10.0f, 3e4f};
  for (size_t i = 0; i < n; ++i) x[i] *= scales[i % 5];
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // clang-format off
  const float specials[] = {
      0.0f, -0.0f, 1e-40f, -1e-40f, 3e-8f, 6e-5f,          // zeros, subnormals
      65504.f, 65519.f, 65520.f, -65520.f, 1e5f, 3e38f,    // fp16 max and overflow
      inf, -inf, nan,                                      // non-finite
      1.0f + 0x1.0p-8f, 1.0f + 0x1.0p-11f, 1.0f + 3 * 0x1.0p-8f,  // ties to even
  };
  // clang-format on
  for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]) && k < n; ++k) {
    x[(k * 7919) % n] = specials[k];
  }
  return x;
}

template <typename floatX>
void CheckCast(size_t N, size_t offset, uint32_t seed) {
  SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset));
  const std::vector<float> x = CastInputs(N, seed);
  std::vector<float> x_off(offset, 0.0f);
  x_off.insert(x_off.end(), x.begin(), x.end());
  DeviceBuffer<float> d_x(x_off), d_back(N + offset);
  DeviceBuffer<floatX> d_t(N + offset);
  ASSERT_NE(d_x.get(), nullptr);
  ASSERT_NE(d_back.get(), nullptr);
  ASSERT_NE(d_t.get(), nullptr);
  d_t.Fill(0xFF);
  d_back.Fill(0xFF);
  ASSERT_TRUE(
      IsOk(kernels::cuda::cast_from_float<floatX>(d_t.get() + offset, d_x.get() + offset, N, 0)));
  ASSERT_TRUE(
      IsOk(kernels::cuda::cast_to_float<floatX>(d_back.get() + offset, d_t.get() + offset, N, 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<floatX> got_t = d_t.Download();
  got_t.erase(got_t.begin(), got_t.begin() + offset);
  EXPECT_EQ(FirstDifferenceT<floatX>(got_t, gpu_test::ToType<floatX>(x)), "") << "cast_from_float";
  std::vector<float> got_back = d_back.Download();
  got_back.erase(got_back.begin(), got_back.begin() + offset);
  // cast_to_float of what the device holds (checked above) is the host ToFloat of it.
  EXPECT_EQ(FirstDifferenceFloat(got_back, gpu_test::ToFloat<floatX>(got_t)), "")
      << "cast_to_float";
  EXPECT_EQ(FirstDifferenceFloat(got_back, RoundTo<floatX>(x)), "") << "round trip";
}

TYPED_TEST(CastGpuTest, MatchesHostConversions) {
  SKIP_WITHOUT_GPU();
  CheckCast<TypeParam>(124 * 1024 + 5, 0, 1);  // vector body plus a 5-element tail
  CheckCast<TypeParam>(1000003, 0, 2);
  CheckCast<TypeParam>(7, 0, 3);        // shorter than one pack
  CheckCast<TypeParam>(1000003, 1, 4);  // misaligned: the scalar path
  CheckCast<TypeParam>(4101, 3, 5);
}

// floatX -> float -> floatX is the identity on every non-NaN floatX (all 2^16 bit patterns for
// 16-bit floatX).
TYPED_TEST(CastGpuTest, ToFloatAndBackIsIdentity) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  std::vector<floatX> all;
  if constexpr (sizeof(floatX) == 2) {
    for (uint32_t b = 0; b < 65536; ++b) {
      const uint16_t bits = static_cast<uint16_t>(b);
      floatX t;
      std::memcpy(static_cast<void*>(&t), &bits, sizeof(t));
      all.push_back(t);
    }
  } else {
    all = gpu_test::ToType<floatX>(CastInputs(65536, 9));
  }
  DeviceBuffer<floatX> d_t(all), d_t2(all.size());
  DeviceBuffer<float> d_f(all.size());
  ASSERT_NE(d_t.get(), nullptr);
  ASSERT_NE(d_t2.get(), nullptr);
  ASSERT_NE(d_f.get(), nullptr);
  ASSERT_TRUE(IsOk(kernels::cuda::cast_to_float<floatX>(d_f.get(), d_t.get(), all.size(), 0)));
  ASSERT_TRUE(IsOk(kernels::cuda::cast_from_float<floatX>(d_t2.get(), d_f.get(), all.size(), 0)));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(FirstDifferenceFloat(d_f.Download(), gpu_test::ToFloat<floatX>(all)), "");
  EXPECT_EQ(FirstDifferenceT<floatX>(d_t2.Download(), all), "");
}

}  // namespace
