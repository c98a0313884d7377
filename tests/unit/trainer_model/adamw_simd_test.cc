// kernels::cpu::adamw_update_simd against the fp32 reference adamw_update: every ISA
// path (a path this CPU lacks is skipped with a message), 1 and 2 threads, odd lengths,
// unaligned pointers, weight decay on/off, grad_scale != 1, 10 steps. The vector paths
// use the reference's operations in its order without FMA (both files are built with
// -ffp-contract=off), so the comparison is bitwise, which implies the 1e-6
// relative bound. The 16-bit copy-out is checked bitwise against independent
// conversions (exact rounding for bf16, _Float16 and F16C for fp16) on NaN, inf,
// subnormal and rounding-tie inputs. Last, torch.optim.AdamW over 10 steps (Debian's
// python3-torch; skipped without it): torch divides by sqrt(1-b2^t) where we multiply
// by its reciprocal and fuses some multiply-adds, so that check has a tolerance.
#include <gtest/gtest.h>
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_model/test_util.h"
#include "trainer/kernels/cpu/adamw.h"
#include "trainer/kernels/cpu/adamw_simd.h"
#include "trainer/optim/adamw.h"

namespace kernels::cpu {
namespace {

using trainer::testing::RandomVector;

uint32_t Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float FromBits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Bitwise equality of got and want (N,), reporting the first mismatch and the largest
// relative difference so a failure shows how far off a path is.
void ExpectBitwise(const float* got, const float* want, size_t N, const char* what) {
  size_t bad = 0, first = 0;
  double max_rel = 0.0;
  for (size_t i = 0; i < N; ++i) {
    if (Bits(got[i]) == Bits(want[i])) continue;
    if (bad++ == 0) first = i;
    const double rel = std::fabs(static_cast<double>(got[i]) - want[i]) /
                       std::max(std::fabs(static_cast<double>(want[i])), 1e-30);
    max_rel = std::max(max_rel, rel);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << N << " differ, first at " << first
                     << " (" << got[first] << " vs " << want[first] << "), max relative "
                     << max_rel;
}

// Gradients of varied magnitude: some tiny (v far below eps^2), some exactly 0.
std::vector<float> Grads(size_t N, uint32_t seed) {
  std::vector<float> g = RandomVector(N, seed, 2.0f);
  for (size_t i = 0; i < N; i += 7) g[i] *= 1e-6f;
  for (size_t i = 3; i < N; i += 11) g[i] = 0.0f;
  return g;
}

class AdamwSimdTest : public ::testing::TestWithParam<std::tuple<AdamIsa, int>> {};

TEST_P(AdamwSimdTest, BitwiseEqualToReferenceOver10Steps) {
  const auto [isa, threads] = GetParam();
  if (!adamw_isa_supported(isa)) GTEST_SKIP() << "this CPU lacks " << adamw_isa_name(isa);
  omp_set_num_threads(threads);
  // 70001 > kParallelMinWork: the threaded split; the others run on one thread.
  for (size_t N : {size_t{1}, size_t{15}, size_t{17}, size_t{33}, size_t{70001}}) {
    for (float wd : {0.0f, 0.1f}) {
      for (float grad_scale : {1.0f, 0.37f}) {
        SCOPED_TRACE("N=" + std::to_string(N) + " wd=" + std::to_string(wd) +
                     " grad_scale=" + std::to_string(grad_scale));
        // Distinct odd offsets: no pointer is 16- or 64-byte aligned, nor aligned alike.
        std::vector<float> pb(N + 8), gb(N + 8), mb(N + 8, 0.0f), vb(N + 8, 0.0f);
        float *p = pb.data() + 1, *g = gb.data() + 3, *m = mb.data() + 2, *v = vb.data() + 5;
        const std::vector<float> p0 = RandomVector(N, 11 + N);
        std::copy(p0.begin(), p0.end(), p);
        std::vector<float> rp = p0, rm(N, 0.0f), rv(N, 0.0f);
        for (long long step = 1; step <= 10; ++step) {
          const std::vector<float> grads = Grads(N, 100 * step + N);
          std::copy(grads.begin(), grads.end(), g);
          adamw_update_simd(p, g, m, v, N, 1e-2f, 0.9f, 0.95f, 1e-8f, wd, step, grad_scale,
                            nullptr, HalfType::kBf16, isa);
          adamw_update(rp.data(), grads.data(), rm.data(), rv.data(), N, 1e-2f, 0.9f, 0.95f,
                       1e-8f, wd, step, grad_scale);
        }
        ExpectBitwise(p, rp.data(), N, "params");
        ExpectBitwise(m, rm.data(), N, "m");
        ExpectBitwise(v, rv.data(), N, "v");
        // The buffers' padding is untouched (masked tails store nothing beyond N).
        EXPECT_EQ(pb[0], 0.0f);
        EXPECT_EQ(pb[N + 1], 0.0f);
        EXPECT_EQ(mb[N + 2], 0.0f);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, AdamwSimdTest,
                         ::testing::Combine(::testing::Values(AdamIsa::kScalar, AdamIsa::kAvx2,
                                                              AdamIsa::kAvx512),
                                            ::testing::Values(1, 2)),
                         [](const auto& info) {
                           return std::string(adamw_isa_name(std::get<0>(info.param))) + "_" +
                                  std::to_string(std::get<1>(info.param)) + "threads";
                         });

// grad_scale read with the gradient equals scaling the gradients first (the trainer's
// separate pass it replaces), bitwise: both are one float multiply per element.
TEST(AdamwSimdTest, GradScaleEqualsPrescaledGradients) {
  const size_t N = 4099;
  std::vector<float> p = RandomVector(N, 5), m(N, 0.0f), v(N, 0.0f);
  std::vector<float> rp = p, rm = m, rv = v;
  const std::vector<float> g = Grads(N, 6);
  std::vector<float> scaled(N);
  for (size_t i = 0; i < N; ++i) scaled[i] = g[i] * 0.125f * 0.8f;
  adamw_update_simd(p.data(), g.data(), m.data(), v.data(), N, 1e-3f, 0.9f, 0.999f, 1e-8f,
                    0.01f, 1, 0.125f * 0.8f);
  adamw_update(rp.data(), scaled.data(), rm.data(), rv.data(), N, 1e-3f, 0.9f, 0.999f, 1e-8f,
               0.01f, 1);
  ExpectBitwise(p.data(), rp.data(), N, "params");
}

TEST(AdamwSimdTest, ParsesIsaNames) {
  AdamIsa isa = AdamIsa::kAuto;
  EXPECT_TRUE(adamw_parse_isa("avx2", &isa));
  EXPECT_EQ(isa, AdamIsa::kAvx2);
  EXPECT_TRUE(adamw_parse_isa("scalar", &isa));
  EXPECT_EQ(isa, AdamIsa::kScalar);
  EXPECT_FALSE(adamw_parse_isa("avx1024", &isa));
  EXPECT_FALSE(adamw_parse_isa(nullptr, &isa));
  EXPECT_NE(adamw_default_isa(), AdamIsa::kAuto);
  EXPECT_TRUE(adamw_isa_supported(adamw_default_isa()));
}

// --- 16-bit copy-out ----------------------------------------------------------------

// bf16 by exact arithmetic: the two bf16 neighbours of x and the nearer one (ties to
// an even mantissa); a value past the largest finite bf16's half-way point is inf.
uint16_t Bf16Reference(float x) {
  if (std::isnan(x)) return 0x7FC0;
  const uint32_t u = Bits(x), lo = u & 0xFFFF0000u;
  if ((u & 0xFFFFu) == 0) return static_cast<uint16_t>(lo >> 16);
  const double dlo = std::fabs(static_cast<double>(FromBits(lo)));
  // The next bf16 away from zero; above the largest finite one it is 2^128 (inf).
  const double dhi = (lo & 0x7FFFFFFFu) == 0x7F7F0000u ? std::ldexp(1.0, 128)
                                                       : std::fabs(FromBits(lo + 0x10000u));
  const double ax = std::fabs(static_cast<double>(x));
  const bool up = ax - dlo > dhi - ax || (ax - dlo == dhi - ax && (lo & 0x10000u));
  return static_cast<uint16_t>((up ? lo + 0x10000u : lo) >> 16);
}

__attribute__((target("f16c"))) uint16_t Fp16F16c(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// fp16: libgcc's correctly rounded _Float16 conversion for numbers; for NaN (whose
// payload IEEE leaves open) the x86 F16C instruction when present, else the quiet NaN
// with the same sign and top payload bits.
uint16_t Fp16Reference(float x) {
  if (std::isnan(x)) {
    if (__builtin_cpu_supports("f16c")) return Fp16F16c(x);
    return static_cast<uint16_t>(((Bits(x) >> 16) & 0x8000u) | 0x7E00u |
                                 ((Bits(x) >> 13) & 0x3FFu));
  }
  const _Float16 h = static_cast<_Float16>(x);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

// Inputs that exercise every branch of both conversions.
std::vector<float> SpecialValues() {
  std::vector<uint32_t> bits = {
      0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7FA5A5A5u, 0xFF812345u,  // NaNs (quiet, signalling)
      0x7F800000u, 0xFF800000u, 0x00000000u, 0x80000000u,               // +-inf, +-0
      0x00000001u, 0x807FFFFFu, 0x00400000u,                            // fp32 subnormals
      0x7F7FFFFFu, 0xFF7F8000u, 0x7F7F7FFFu,                            // near FLT_MAX
      0x3F808000u, 0x3F818000u, 0xBF808000u, 0x3F808001u, 0x3F807FFFu,  // bf16 ties and neighbours
      0x3F801000u, 0x3F803000u, 0x3F802FFFu, 0x3F803001u,               // fp16 ties (1 + k/2^11)
      0x477FE000u, 0x477FEFFFu, 0x477FF000u, 0x47800000u, 0xC77FF000u,  // 65504 .. 65536
      0x38800000u, 0x387FFFFFu, 0x387FF000u, 0x38000000u,               // fp16 normal/subnormal border
      0x33000000u, 0x33000001u, 0x33800000u, 0x33C00000u, 0x34200000u,  // 2^-25 tie, 2^-24, 1.5*2^-24
      0xB3400000u, 0x32FFFFFFu, 0x34000000u, 0x35A00000u, 0x36B00000u,  // more subnormal roundings
  };
  std::vector<float> out;
  for (uint32_t b : bits) out.push_back(FromBits(b));
  // Every exponent with a tie mantissa, and random bit patterns.
  for (uint32_t e = 0; e < 255; ++e) {
    out.push_back(FromBits((e << 23) | 0x1000u));
    out.push_back(FromBits((e << 23) | 0x8000u | 0x80000000u));
  }
  uint32_t s = 12345;
  for (int i = 0; i < 3000; ++i) {
    s = s * 1664525u + 1013904223u;
    out.push_back(FromBits(s));
  }
  return out;
}

TEST(HalfConversionTest, PortableConversionsMatchReferences) {
  for (float x : SpecialValues()) {
    SCOPED_TRACE("x bits 0x" + [&] {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "%08x", Bits(x));
      return std::string(buf);
    }());
    EXPECT_EQ(float_to_bf16_bits(x), Bf16Reference(x));
    EXPECT_EQ(float_to_fp16_bits(x), Fp16Reference(x));
  }
}

class HalfCopyTest : public ::testing::TestWithParam<std::tuple<AdamIsa, HalfType>> {};

// With lr = 0 (and so no decay) the update keeps params (p*1 - 0*q), so the special
// values reach the copy-out; each 16-bit value must be the reference conversion of
// the updated fp32 param, on every path, thread count 2, odd length, unaligned.
TEST_P(HalfCopyTest, CopyOutIsBitwiseTheReferenceConversion) {
  const auto [isa, type] = GetParam();
  if (!adamw_isa_supported(isa)) GTEST_SKIP() << "this CPU lacks " << adamw_isa_name(isa);
  omp_set_num_threads(2);
  std::vector<float> values = SpecialValues();
  while (values.size() < 40000) values.insert(values.end(), values.begin(), values.end());
  values.resize(40001);  // > kParallelMinWork, odd
  const size_t N = values.size();
  std::vector<float> pb(N + 4), m(N, 0.0f), v(N, 0.0f);
  float* p = pb.data() + 1;
  std::copy(values.begin(), values.end(), p);
  const std::vector<float> g = Grads(N, 9);
  std::vector<uint16_t> hb(N + 4, 0xABCD);
  uint16_t* half = hb.data() + 1;
  adamw_update_simd(p, g.data(), m.data(), v.data(), N, 0.0f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, 1.0f,
                    half, type, isa);
  size_t bad = 0;
  for (size_t i = 0; i < N; ++i) {
    const uint16_t want = type == HalfType::kBf16 ? Bf16Reference(p[i]) : Fp16Reference(p[i]);
    if (half[i] != want && bad++ < 5) {
      ADD_FAILURE() << "i=" << i << " param bits " << std::hex << Bits(p[i]) << ": got "
                    << half[i] << " want " << want;
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(hb[0], 0xABCD);
  EXPECT_EQ(hb[N + 1], 0xABCD);
  // The params themselves are what the reference makes of them.
  std::vector<float> rp = values, rm(N, 0.0f), rv(N, 0.0f);
  adamw_update(rp.data(), g.data(), rm.data(), rv.data(), N, 0.0f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
  ExpectBitwise(p, rp.data(), N, "params");
}

INSTANTIATE_TEST_SUITE_P(Paths, HalfCopyTest,
                         ::testing::Combine(::testing::Values(AdamIsa::kScalar, AdamIsa::kAvx2,
                                                              AdamIsa::kAvx512),
                                            ::testing::Values(HalfType::kBf16, HalfType::kFp16)),
                         [](const auto& info) {
                           return std::string(adamw_isa_name(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) == HalfType::kBf16 ? "_bf16" : "_fp16");
                         });

// --- torch.optim.AdamW --------------------------------------------------------------

constexpr char kPython[] = "/usr/bin/python3";

// 10 steps of torch.optim.AdamW (foreach off and on) from the same start and gradients;
// params, m, v within 1e-6 relative per element, relative to max(|element|, rms of the
// array): m is a sum of terms of both signs, so where it nearly cancels, the last-bit
// differences of its terms (torch rounds (1-b1)*g inside a fused multiply-add) are large
// against m itself though tiny against the terms (seen: 5e-6 relative at m ~ 1e-3).
TEST(AdamwTorchTest, MatchesTorchOptimAdamWOver10Steps) {
  if (access(kPython, X_OK) != 0 || std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null")) {
    GTEST_SKIP() << kPython << " with torch (Debian python3-torch) not available";
  }
  const int N = 1037, steps = 10;
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
  coord::testing::TempDir tmp;
  const std::string dir = tmp.path();
  std::vector<float> p = RandomVector(N, 77), m(N, 0.0f), v(N, 0.0f);
  {
    std::ofstream f(dir + "/in.bin", std::ios::binary);
    const int32_t header[2] = {N, steps};
    f.write(reinterpret_cast<const char*>(header), sizeof(header));
    f.write(reinterpret_cast<const char*>(p.data()), N * 4);
    for (int s = 1; s <= steps; ++s) {
      const std::vector<float> g = Grads(N, 300 + s);
      f.write(reinterpret_cast<const char*>(g.data()), N * 4);
      adamw_update_simd(p.data(), g.data(), m.data(), v.data(), N, lr, b1, b2, eps, wd, s);
    }
  }
  for (const char* foreach : {"0", "1"}) {
    SCOPED_TRACE(std::string("foreach=") + foreach);
    const std::string cmd = std::string(kPython) + " " + COORD_SOURCE_DIR +
                            "/tests/reference/adamw_reference.py " + dir + "/in.bin " + dir +
                            "/out.bin --lr 1e-2 --beta1 0.9 --beta2 0.95 --eps 1e-8 "
                            "--weight-decay 0.1 --foreach " + foreach;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::vector<float> out(3 * N);
    std::ifstream f(dir + "/out.bin", std::ios::binary);
    f.read(reinterpret_cast<char*>(out.data()), 3 * N * 4);
    ASSERT_TRUE(f.good());
    const std::vector<float>* ours[3] = {&p, &m, &v};
    const char* names[3] = {"params", "m", "v"};
    for (int k = 0; k < 3; ++k) {
      double ss = 0.0;
      for (int i = 0; i < N; ++i) ss += static_cast<double>(out[k * N + i]) * out[k * N + i];
      const double rms = std::sqrt(ss / N);
      int bad = 0;
      for (int i = 0; i < N; ++i) {
        const double want = out[k * N + i], got = (*ours[k])[i];
        if (std::fabs(got - want) > 1e-6 * std::max(std::fabs(want), rms) && bad++ < 3) {
          ADD_FAILURE() << names[k] << "[" << i << "] " << got << " vs torch " << want;
        }
      }
      EXPECT_EQ(bad, 0) << names[k];
    }
  }
}

}  // namespace
}  // namespace kernels::cpu
