// AdamW update (see adamw.h), in the operation order of torch.optim.AdamW's
// single-tensor path; bias corrections are computed in double as Python does.
#include "trainer/kernels/cpu/adamw.h"

#include <cmath>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

AdamwScalars adamw_scalars(float lr, float beta1, float beta2, float weight_decay,
                           long long step) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  AdamwScalars s;
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  s.decay = 1.0f - lr * weight_decay;
  return s;
}

void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, long long step,
                  float grad_scale) {
  const AdamwScalars s = adamw_scalars(lr, beta1, beta2, weight_decay, step);
  const long long n = static_cast<long long>(N);
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long long i = 0; i < n; ++i) {
    adamw_element(params[i], grads[i] * grad_scale, m[i], v[i], beta1, beta2, eps, s);
  }
}

}  // namespace kernels::cpu
