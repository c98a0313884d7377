// AdamW update (see adamw.h), in the operation order of torch.optim.AdamW's
// single-tensor path; bias corrections are computed in double as Python does.
#include "trainer/kernels/cpu/adamw.h"

#include <cmath>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, long long step) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  const float decay = 1.0f - lr * weight_decay;
  const long long n = static_cast<long long>(N);
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long long i = 0; i < n; ++i) {
    float g = grads[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) * inv_bc2_sqrt + eps;
    params[i] = params[i] * decay - step_size * (mi / denom);
  }
}

}  // namespace kernels::cpu
