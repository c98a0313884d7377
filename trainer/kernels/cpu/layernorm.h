// LayerNorm over the last dimension (eps as configured, 1e-5 for GPT-2), fp32 CPU reference.
#pragma once

namespace kernels::cpu {

// inp, out are (N,C) with N = B*T rows; weight, bias (C,); mean, rstd (N,) saved for backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);
// Accumulates: dinp (N,C) +=, dweight (C,) +=, dbias (C,) += ; dout (N,C).
// dweight/dbias use the fixed-chunk reduction of reduce.h (deterministic).
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

}  // namespace kernels::cpu
