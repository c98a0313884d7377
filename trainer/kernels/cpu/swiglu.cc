// SwiGLU forward/backward (see swiglu.h). With s = sigmoid(g):
//   d gate = dout * up * s * (1 + g (1 - s)),  d up = dout * g * s.
#include "trainer/kernels/cpu/swiglu.h"

#include <cmath>
#include <cstddef>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void swiglu_forward(float* out, const float* inp, int N, int F) {
#pragma omp parallel for schedule(static) if (1LL * N * F >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* gate = inp + static_cast<size_t>(n) * 2 * F;  // (F,)
    const float* up = gate + F;                                // (F,)
    float* y = out + static_cast<size_t>(n) * F;
    for (int i = 0; i < F; ++i) {
      const float g = gate[i];
      y[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }
}

void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int F) {
#pragma omp parallel for schedule(static) if (1LL * N * F >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* gate = inp + static_cast<size_t>(n) * 2 * F;
    const float* up = gate + F;
    float* dgate = dinp + static_cast<size_t>(n) * 2 * F;
    float* dup = dgate + F;
    const float* dy = dout + static_cast<size_t>(n) * F;
    for (int i = 0; i < F; ++i) {
      const float g = gate[i];
      const float s = 1.0f / (1.0f + std::exp(-g));
      const float silu = g * s;
      dgate[i] += dy[i] * up[i] * s * (1.0f + g * (1.0f - s));
      dup[i] += dy[i] * silu;
    }
  }
}

}  // namespace kernels::cpu
