// cpu_adam_bench: time of one AdamW step of kernels::cpu::adamw_update_simd (per ISA
// path) and of the reference adamw_update over N fp32 parameters, and the machine's
// memory bandwidth by a STREAM-style triad; driven by bench/cpu_adam_bench.py, which
// runs torch.optim.AdamW beside it.
//
//   cpu_adam_bench adam --size N [--isas avx512,avx2,scalar,ref] [--steps 3] [--warmup 1]
//                       [--half none|bf16|fp16] [--grad-scale 1]
//   cpu_adam_bench triad [--elems 33554432] [--reps 10]
//
// Threads: the OpenMP team (OMP_NUM_THREADS). Buffers are 64-byte aligned and first
// touched by the same static split the kernel uses, so pages sit near their threads.
// adam: params, grads, m, v (N,) fp32 (+ an (N,) 16-bit copy with --half); per path,
// `warmup` untimed then `steps` timed steps back to back, one JSON line each:
//   {"kind":"adam","isa":...,"size":N,"half":...,"ms":[...]}
// triad: a[i] = b[i] + s*c[i] over three (elems,) double arrays, best of `reps`:
//   {"kind":"triad","elems":n,"best_s":t,"GBps":24*n/t/1e9}  (STREAM's count: 24 bytes
// per element, the write-allocate read of a[] not counted). Exit status 1 on a bad
// argument or failed allocation, with a message on stderr.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "trainer/kernels/cpu/adamw.h"
#include "trainer/kernels/cpu/adamw_simd.h"

namespace {

using Clock = std::chrono::steady_clock;
using kernels::cpu::AdamIsa;
using kernels::cpu::HalfType;

template <typename T>
T* AlignedAlloc(size_t n) {
  const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  return static_cast<T*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64));
}

// Deterministic values in [-1, 1) from an index (no RNG state to share across threads).
inline float HashUnit(uint64_t i, uint64_t seed) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<float>(static_cast<int64_t>(x >> 40) - (1 << 23)) / (1 << 23);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int RunTriad(long long n, int reps) {
  double *a = AlignedAlloc<double>(n), *b = AlignedAlloc<double>(n), *c = AlignedAlloc<double>(n);
  if (!a || !b || !c) {
    std::fprintf(stderr, "triad: cannot allocate 3 x %lld doubles\n", n);
    return 1;
  }
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < n; ++i) {
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 2.0;
  }
  const double s = 3.0;
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  if (a[n / 2] != 7.0) {  // keeps the loop and checks it ran
    std::fprintf(stderr, "triad: wrong result %g\n", a[n / 2]);
    return 1;
  }
  std::printf("{\"kind\":\"triad\",\"elems\":%lld,\"threads\":%d,\"best_s\":%.6f,\"GBps\":%.3f}\n",
              n, omp_get_max_threads(), best, 24.0 * n / best / 1e9);
  std::free(a);
  std::free(b);
  std::free(c);
  return 0;
}

int RunAdam(long long n, const std::vector<std::string>& isas, int steps, int warmup,
            const std::string& half, float grad_scale) {
  float *p = AlignedAlloc<float>(n), *g = AlignedAlloc<float>(n);
  float *m = AlignedAlloc<float>(n), *v = AlignedAlloc<float>(n);
  uint16_t* h = half == "none" ? nullptr : AlignedAlloc<uint16_t>(n);
  if (!p || !g || !m || !v || (half != "none" && !h)) {
    std::fprintf(stderr, "adam: cannot allocate 4 x %lld floats\n", n);
    return 1;
  }
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < n; ++i) {
    p[i] = 0.02f * HashUnit(i, 1);
    g[i] = HashUnit(i, 2);
    m[i] = 0.0f;
    v[i] = 0.0f;
    if (h) h[i] = 0;
  }
  const HalfType ht = half == "fp16" ? HalfType::kFp16 : HalfType::kBf16;
  long long step = 0;
  for (const std::string& name : isas) {
    AdamIsa isa = AdamIsa::kScalar;
    const bool ref = name == "ref";
    if (!ref && (!kernels::cpu::adamw_parse_isa(name.c_str(), &isa) || isa == AdamIsa::kAuto)) {
      std::fprintf(stderr, "adam: unknown isa %s\n", name.c_str());
      return 1;
    }
    if (!ref && !kernels::cpu::adamw_isa_supported(isa)) {
      std::printf("{\"kind\":\"adam\",\"isa\":\"%s\",\"size\":%lld,\"skipped\":\"cpu lacks it\"}\n",
                  name.c_str(), n);
      continue;
    }
    std::vector<double> ms;
    for (int s = 0; s < warmup + steps; ++s) {
      ++step;
      const auto t0 = Clock::now();
      if (ref) {  // the reference has no copy-out: --half applies to the ISA paths only
        kernels::cpu::adamw_update(p, g, m, v, n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step,
                                   grad_scale);
      } else {
        kernels::cpu::adamw_update_simd(p, g, m, v, n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step,
                                        grad_scale, h, ht, isa);
      }
      const double t = Seconds(t0, Clock::now()) * 1e3;
      if (s >= warmup) ms.push_back(t);
    }
    std::printf("{\"kind\":\"adam\",\"isa\":\"%s\",\"size\":%lld,\"threads\":%d,\"half\":\"%s\",\"ms\":[",
                name.c_str(), n, omp_get_max_threads(), ref ? "none" : half.c_str());
    for (size_t i = 0; i < ms.size(); ++i) std::printf("%s%.3f", i ? "," : "", ms[i]);
    std::printf("]}\n");
    std::fflush(stdout);
  }
  if (!(p[n / 3] == p[n / 3])) std::fprintf(stderr, "adam: NaN in params\n");
  std::free(p);
  std::free(g);
  std::free(m);
  std::free(v);
  std::free(h);
  return 0;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "adam") != 0 && std::strcmp(argv[1], "triad") != 0)) {
    std::fprintf(stderr, "usage: %s adam --size N [...] | triad [...] (see the file header)\n",
                 argv[0]);
    return 1;
  }
  const std::string mode = argv[1];
  long long size = 0, elems = 1ll << 25;
  int steps = 3, warmup = 1, reps = 10;
  std::string isas = "avx512,avx2,scalar,ref", half = "none";
  float grad_scale = 1.0f;
  for (int i = 2; i + 1 < argc + 1; i += 2) {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", argv[i]);
      return 1;
    }
    const std::string k = argv[i], val = argv[i + 1];
    if (k == "--size") size = std::atoll(val.c_str());
    else if (k == "--elems") elems = std::atoll(val.c_str());
    else if (k == "--steps") steps = std::atoi(val.c_str());
    else if (k == "--warmup") warmup = std::atoi(val.c_str());
    else if (k == "--reps") reps = std::atoi(val.c_str());
    else if (k == "--isas") isas = val;
    else if (k == "--half") half = val;
    else if (k == "--grad-scale") grad_scale = std::strtof(val.c_str(), nullptr);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 1;
    }
  }
  if (mode == "triad") return elems > 0 && reps > 0 ? RunTriad(elems, reps) : 1;
  if (size <= 0 || steps <= 0 || warmup < 0 || (half != "none" && half != "bf16" && half != "fp16")) {
    std::fprintf(stderr, "adam: need --size > 0, --steps > 0, --half none|bf16|fp16\n");
    return 1;
  }
  return RunAdam(size, Split(isas), steps, warmup, half, grad_scale);
}
