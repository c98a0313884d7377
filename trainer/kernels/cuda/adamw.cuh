// Fused AdamW over a flat range with the fp32 master copy: reads the fp32 gradient
// (times grad_scale: 1/loss_scale and the clip coefficient folded into one factor),
// updates master, m and v in fp32 exactly as the CPU twin (kernels/cpu/adamw.h, same
// operation order), and writes the rounded compute copy in the same pass.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// master, grads, m, v are (N,) fp32; params_copy (N,) in floatX, or null when the master
// is itself the compute copy (fp32). step >= 1.
template <typename floatX>
coord::Status adamw_update(float* master, floatX* params_copy, const float* grads, float* m,
                           float* v, size_t N, float lr, float beta1, float beta2, float eps,
                           float weight_decay, long long step, float grad_scale,
                           cudaStream_t stream);

}  // namespace kernels::cuda
