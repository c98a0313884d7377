// Vectorised AdamW (see adamw_simd.h). Each path is a function that updates one
// contiguous chunk [b, e); adamw_update_simd splits N over the OpenMP team. The vector
// paths spell out adamw_element's operations one intrinsic each (mul, add, sqrt, div:
// no FMA, and this file is built with -ffp-contract=off so the compiler fuses none),
// hence bitwise equality with the reference. The AVX2 and AVX-512 functions carry
// target attributes, so the rest of the build needs no -m flags and a CPU without
// them only ever runs the scalar path.
#include "trainer/kernels/cpu/adamw_simd.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "trainer/kernels/cpu/adamw.h"
#include "trainer/kernels/cpu/reduce.h"

// GCC 12 reports its own _mm*_undefined_* helpers (self-initialised on purpose) as
// maybe-uninitialized once inlined; the warning says nothing about this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kernels::cpu {
namespace {

struct Args {
  float* p;             // (N,) params, updated
  const float* g;       // (N,) gradients, read times grad_scale
  float* m;             // (N,) first moment
  float* v;             // (N,) second moment
  uint16_t* half;       // (N,) 16-bit copy of the updated params, or null
  HalfType half_type;
  float beta1, beta2, eps, grad_scale;
  AdamwScalars s;
};

constexpr size_t kChunkAlign = 16;  // floats: one 64-byte line, one AVX-512 vector

inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// --- scalar path ----------------------------------------------------------------

void chunk_scalar(const Args& a, size_t b, size_t e) {
  for (size_t i = b; i < e; ++i) {
    adamw_element(a.p[i], a.g[i] * a.grad_scale, a.m[i], a.v[i], a.beta1, a.beta2, a.eps, a.s);
    if (a.half) {
      a.half[i] = a.half_type == HalfType::kBf16 ? float_to_bf16_bits(a.p[i])
                                                 : float_to_fp16_bits(a.p[i]);
    }
  }
}

// --- AVX2 path (8 floats; FMA is part of the target only as the AVX2-era baseline,
// no fused operation is used; F16C for the fp16 copy) --------------------------------

#define ADAM_AVX2 __attribute__((target("avx2,fma,f16c")))

// bf16 bits of 8 floats in the low 16 bits of each 32-bit lane: (u + 0x7FFF + lsb) >> 16,
// NaN lanes replaced by 0x7FC0.
ADAM_AVX2 inline __m256i bf16_lanes_avx2(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
}

ADAM_AVX2 void chunk_avx2(const Args& a, size_t b, size_t e) {
  const __m256 b1 = _mm256_set1_ps(a.beta1), omb1 = _mm256_set1_ps(1.0f - a.beta1);
  const __m256 b2 = _mm256_set1_ps(a.beta2), omb2 = _mm256_set1_ps(1.0f - a.beta2);
  const __m256 eps = _mm256_set1_ps(a.eps), gs = _mm256_set1_ps(a.grad_scale);
  const __m256 ibc = _mm256_set1_ps(a.s.inv_bc2_sqrt), decay = _mm256_set1_ps(a.s.decay);
  const __m256 step = _mm256_set1_ps(a.s.step_size);
  size_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(a.g + i), gs);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(a.m + i)),
                                    _mm256_mul_ps(omb1, g));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(a.v + i)),
                                    _mm256_mul_ps(_mm256_mul_ps(omb2, g), g));
    _mm256_storeu_ps(a.m + i, mi);
    _mm256_storeu_ps(a.v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), ibc), eps);
    const __m256 p = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(a.p + i), decay),
                                   _mm256_mul_ps(step, _mm256_div_ps(mi, denom)));
    _mm256_storeu_ps(a.p + i, p);
    if (a.half) {
      __m128i h;
      if (a.half_type == HalfType::kBf16) {
        const __m256i r = bf16_lanes_avx2(p);
        h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
      } else {
        h = _mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.half + i), h);
    }
  }
  chunk_scalar(a, i, e);  // < 8 left: same operations in scalar form
}

// --- AVX-512F path (16 floats; the tail runs masked, so no scalar remainder) --------

#define ADAM_AVX512 __attribute__((target("avx512f")))

struct Avx512Consts {
  __m512 b1, omb1, b2, omb2, eps, gs, ibc, decay, step;
};

// One vector of 16 elements at i. kMasked (the tail only): lanes outside k load 0 and
// are never stored (0/eps: no trap). The full vectors use plain loads and stores: masked
// stores cost several times more on some cores (measured 2x slower steps on Zen 4).
template <bool kMasked>
ADAM_AVX512 inline void step16_avx512(const Args& a, const Avx512Consts& c, size_t i,
                                      __mmask16 k) {
  auto load = [&](const float* x) ADAM_AVX512 {
    return kMasked ? _mm512_maskz_loadu_ps(k, x) : _mm512_loadu_ps(x);
  };
  auto store = [&](float* x, __m512 y) ADAM_AVX512 {
    if (kMasked) {
      _mm512_mask_storeu_ps(x, k, y);
    } else {
      _mm512_storeu_ps(x, y);
    }
  };
  const __m512 g = _mm512_mul_ps(load(a.g + i), c.gs);
  const __m512 mi = _mm512_add_ps(_mm512_mul_ps(c.b1, load(a.m + i)), _mm512_mul_ps(c.omb1, g));
  const __m512 vi = _mm512_add_ps(_mm512_mul_ps(c.b2, load(a.v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(c.omb2, g), g));
  store(a.m + i, mi);
  store(a.v + i, vi);
  const __m512 denom = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), c.ibc), c.eps);
  const __m512 p = _mm512_sub_ps(_mm512_mul_ps(load(a.p + i), c.decay),
                                 _mm512_mul_ps(c.step, _mm512_div_ps(mi, denom)));
  store(a.p + i, p);
  if (!a.half) return;
  __m256i h;
  if (a.half_type == HalfType::kBf16) {  // (u + 0x7FFF + lsb) >> 16, NaN -> 0x7FC0
    const __m512i u = _mm512_castps_si512(p);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(p, p, _CMP_UNORD_Q),
                              _mm512_set1_epi32(0x7FC0));
    if (kMasked) {  // AVX-512F has no masked 16-bit store but this narrowing one
      _mm512_mask_cvtepi32_storeu_epi16(a.half + i, k, r);
      return;
    }
    h = _mm512_cvtepi32_epi16(r);
  } else {
    h = _mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (kMasked) {
      _mm512_mask_cvtepi32_storeu_epi16(a.half + i, k, _mm512_cvtepu16_epi32(h));
      return;
    }
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.half + i), h);
}

ADAM_AVX512 void chunk_avx512(const Args& a, size_t b, size_t e) {
  const Avx512Consts c{_mm512_set1_ps(a.beta1),          _mm512_set1_ps(1.0f - a.beta1),
                       _mm512_set1_ps(a.beta2),          _mm512_set1_ps(1.0f - a.beta2),
                       _mm512_set1_ps(a.eps),            _mm512_set1_ps(a.grad_scale),
                       _mm512_set1_ps(a.s.inv_bc2_sqrt), _mm512_set1_ps(a.s.decay),
                       _mm512_set1_ps(a.s.step_size)};
  size_t i = b;
  for (; i + 16 <= e; i += 16) step16_avx512<false>(a, c, i, 0xFFFF);
  if (i < e) step16_avx512<true>(a, c, i, static_cast<__mmask16>((1u << (e - i)) - 1));
}

using ChunkFn = void (*)(const Args&, size_t, size_t);

ChunkFn chunk_fn(AdamIsa isa) {
  if (!adamw_isa_supported(isa)) isa = AdamIsa::kAuto;
  if (isa == AdamIsa::kAuto) {
    isa = adamw_isa_supported(AdamIsa::kAvx512) ? AdamIsa::kAvx512
          : adamw_isa_supported(AdamIsa::kAvx2) ? AdamIsa::kAvx2
                                                : AdamIsa::kScalar;
  }
  switch (isa) {
    case AdamIsa::kAvx512:
      return chunk_avx512;
    case AdamIsa::kAvx2:
      return chunk_avx2;
    default:
      return chunk_scalar;
  }
}

}  // namespace

// --- run-time selection -----------------------------------------------------------

// F16C is CPUID.1:ECX bit 29, read directly: clang before 15 does not know "f16c" in
// __builtin_cpu_supports (the fuzzing build, tests/fuzz, uses Debian's clang 14).
static bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

bool adamw_isa_supported(AdamIsa isa) {
  switch (isa) {
    case AdamIsa::kAuto:
    case AdamIsa::kScalar:
      return true;
    case AdamIsa::kAvx2:  // libgcc's check includes the OS saving the ymm state (XCR0)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case AdamIsa::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

const char* adamw_isa_name(AdamIsa isa) {
  switch (isa) {
    case AdamIsa::kAuto:
      return "auto";
    case AdamIsa::kScalar:
      return "scalar";
    case AdamIsa::kAvx2:
      return "avx2";
    case AdamIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool adamw_parse_isa(const char* name, AdamIsa* out) {
  for (AdamIsa isa : {AdamIsa::kAuto, AdamIsa::kScalar, AdamIsa::kAvx2, AdamIsa::kAvx512}) {
    if (name && std::strcmp(name, adamw_isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

AdamIsa adamw_default_isa() {
  static const AdamIsa isa = [] {
    const AdamIsa best = adamw_isa_supported(AdamIsa::kAvx512) ? AdamIsa::kAvx512
                         : adamw_isa_supported(AdamIsa::kAvx2) ? AdamIsa::kAvx2
                                                               : AdamIsa::kScalar;
    const char* env = std::getenv("GPT_RANK_CPU_ADAM_ISA");
    if (env == nullptr || *env == '\0') return best;
    AdamIsa want;
    if (!adamw_parse_isa(env, &want)) {
      std::fprintf(stderr, "GPT_RANK_CPU_ADAM_ISA=%s is not scalar|avx2|avx512: using %s\n", env,
                   adamw_isa_name(best));
      return best;
    }
    if (want == AdamIsa::kAuto) return best;
    if (!adamw_isa_supported(want)) {
      std::fprintf(stderr, "GPT_RANK_CPU_ADAM_ISA=%s: this CPU lacks it, using %s\n", env,
                   adamw_isa_name(best));
      return best;
    }
    return want;
  }();
  return isa;
}

// --- 16-bit conversions -------------------------------------------------------------

uint16_t float_to_bf16_bits(float x) {
  const uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;  // NaN (c10::BFloat16's choice)
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

uint16_t float_to_fp16_bits(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00 | ((a >> 13) & 0x3FF);  // NaN, quietened
  if (a >= 0x477FF000u) return sign | 0x7C00;  // >= 65520 (and inf) rounds to inf
  if (a >= 0x38800000u) {                       // >= 2^-14: normal fp16
    const uint32_t r = a - 0x38000000u;         // exponent rebias 127 -> 15
    return sign | static_cast<uint16_t>((r + 0xFFFu + ((r >> 13) & 1u)) >> 13);
  }
  const uint32_t e = a >> 23;  // subnormal fp16 k * 2^-24, k = M * 2^(e - 126)
  if (e < 102) return sign;    // < 2^-25 (or fp32 subnormal): rounds to 0
  const uint32_t mant = (a & 0x7FFFFFu) | 0x800000u, shift = 126 - e;  // 14..24
  uint32_t k = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (k & 1u))) ++k;  // k may carry into the smallest normal
  return sign | static_cast<uint16_t>(k);
}

// --- entry point --------------------------------------------------------------------

void adamw_update_simd(float* params, const float* grads, float* m, float* v, size_t N,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       long long step, float grad_scale, uint16_t* params_half,
                       HalfType half_type, AdamIsa isa) {
  const Args a{params, grads,         m,   v,          params_half,
               half_type, beta1, beta2, eps, grad_scale, adamw_scalars(lr, beta1, beta2,
                                                                       weight_decay, step)};
  const ChunkFn fn = chunk_fn(isa == AdamIsa::kAuto ? adamw_default_isa() : isa);
  if (static_cast<long long>(N) < kParallelMinWork) {
    fn(a, 0, N);
    return;
  }
  // Chunk borders fall where params + i starts a 64-byte line (head elements reach the
  // first one), so no two threads write the same line of params and each chunk's
  // vector loop starts aligned there; m, v, grads need not share the alignment.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(params);
  const size_t head = addr % 4 == 0 ? (64 - addr % 64) % 64 / 4 : 0;
#pragma omp parallel
  {
    const size_t T = static_cast<size_t>(omp_get_num_threads());
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    auto border = [&](size_t k) -> size_t {
      if (k == 0) return 0;
      if (k >= T) return N;
      const size_t x = N * k / T;
      const size_t y = x < head ? 0 : head + (x - head) / kChunkAlign * kChunkAlign;
      return y < N ? y : N;
    };
    fn(a, border(t), border(t + 1));
  }
}

}  // namespace kernels::cpu
