// AdamW update (decoupled weight decay, torch.optim.AdamW / apex FusedAdam adam_w_mode),
// fp32 CPU reference. The optimizer (trainer/optim/adamw.h) calls it per flat range.
#pragma once

#include <cstddef>

namespace kernels::cpu {

// params, grads, m, v are (N,); step >= 1 is the 1-based update count for bias correction.
// p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= (lr / (1-b1^step)) * m / (sqrt(v) / sqrt(1-b2^step) + eps).
void adamw_update(float* params, const float* grads, float* m, float* v, size_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, long long step);

}  // namespace kernels::cpu
