// AdamW update (decoupled weight decay, torch.optim.AdamW / apex FusedAdam adam_w_mode),
// fp32 CPU reference. The optimizer (trainer/optim/adamw.h) calls it per flat range;
// adamw_simd.h is its vectorised twin (same element step, so bitwise equal).
#pragma once

#include <cmath>
#include <cstddef>

namespace kernels::cpu {

// params, grads, m, v are (N,); step >= 1 is the 1-based update count for bias correction.
// g = grads * grad_scale; p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= (lr / (1-b1^step)) * m / (sqrt(v) / sqrt(1-b2^step) + eps).
void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, long long step,
                  float grad_scale = 1.0f);

// The per-call scalars, rounded to float once (bias corrections in double, as Python).
struct AdamwScalars {
  float step_size;     // lr / (1 - beta1^step)
  float inv_bc2_sqrt;  // 1 / sqrt(1 - beta2^step)
  float decay;         // 1 - lr * weight_decay
};
AdamwScalars adamw_scalars(float lr, float beta1, float beta2, float weight_decay,
                           long long step);

// One element, in torch's single-tensor operation order. Every path (adamw.cc and the
// vector paths of adamw_simd.cc) follows these exact operations, and both files are
// compiled with -ffp-contract=off: a fused multiply-add would round once instead of
// twice and change the last bit of m, v or p. sqrt and division are IEEE correctly
// rounded in scalar and vector form alike, so no other source of difference exists.
inline void adamw_element(float& p, float g, float& m, float& v, float beta1, float beta2,
                          float eps, const AdamwScalars& s) {
  const float mi = beta1 * m + (1.0f - beta1) * g;
  const float vi = beta2 * v + (1.0f - beta2) * g * g;
  m = mi;
  v = vi;
  const float denom = std::sqrt(vi) * s.inv_bc2_sqrt + eps;
  p = p * s.decay - s.step_size * (mi / denom);
}

}  // namespace kernels::cpu
