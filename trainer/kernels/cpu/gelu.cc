// GELU, CPU reference: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#include "trainer/kernels/cpu/gelu.h"

#include <cmath>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

static constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

void gelu_forward(float* out, const float* inp, int N) {
#pragma omp parallel for schedule(static) if (N >= kParallelMinWork)
  for (int i = 0; i < N; ++i) {
    float x = inp[i];
    float cube = 0.044715f * x * x * x;
    out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + cube)));
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int N) {
#pragma omp parallel for schedule(static) if (N >= kParallelMinWork)
  for (int i = 0; i < N; ++i) {
    float x = inp[i];
    float cube = 0.044715f * x * x * x;
    float tanh_arg = kGeluScale * (x + cube);
    float tanh_out = tanhf(tanh_arg);
    float sech2 = 1.0f - tanh_out * tanh_out;
    float local_grad = 0.5f * (1.0f + tanh_out) +
                       x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[i] += local_grad * dout[i];
  }
}

}  // namespace kernels::cpu
