// RoPE forward/backward (see rope.h): a rotation by +angle, and its transpose.
#include "trainer/kernels/cpu/rope.h"

#include <cmath>
#include <cstddef>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void rope_table(float* cos, float* sin, int P, int HS, float base) {
  const int half = HS / 2;
  for (int i = 0; i < half; ++i) {
    // torch: inv_freq = 1.0 / (base ** (arange(0, HS, 2).float() / HS)), all fp32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(HS);
    const float power = static_cast<float>(std::pow(static_cast<double>(base), exponent));
    const float inv_freq = 1.0f / power;
    for (int p = 0; p < P; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

namespace {

// Rotates one head vector x (HS,) by the table row (cos, sin) (HS/2,); sign -1 rotates
// back (backward).
inline void Rotate(float* x, const float* c, const float* s, int half, float sign) {
  for (int i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half], si = sign * s[i];
    x[i] = a * c[i] - b * si;
    x[i + half] = b * c[i] + a * si;
  }
}

void RopeApply(float* qkv, const float* cos, const float* sin, int B, int T,
               const QkvLayout& l, const int* pos, float sign) {
  const int half = l.HS / 2, row = l.row();
#pragma omp parallel for collapse(2) schedule(static) if (1LL * B * T * row >= kParallelMinWork)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const size_t bt = static_cast<size_t>(b) * T + t;
      const int p = pos != nullptr ? pos[bt] : t;
      const float* c = cos + static_cast<size_t>(p) * half;
      const float* s = sin + static_cast<size_t>(p) * half;
      float* x = qkv + bt * row;
      for (int h = 0; h < l.NH; ++h) Rotate(x + l.q(h), c, s, half, sign);
      for (int g = 0; g < l.KV; ++g) Rotate(x + l.k(g), c, s, half, sign);
    }
  }
}

}  // namespace

void rope_forward(float* qkv, const float* cos, const float* sin, int B, int T,
                  const QkvLayout& layout, const int* pos) {
  RopeApply(qkv, cos, sin, B, T, layout, pos, 1.0f);
}

void rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T,
                   const QkvLayout& layout, const int* pos) {
  RopeApply(dqkv, cos, sin, B, T, layout, pos, -1.0f);
}

}  // namespace kernels::cpu
