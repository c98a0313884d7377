// RMSNorm over the last dimension (Llama / Qwen2, Megatron's normalization "RMSNorm"),
// fp32 CPU reference: y = x * rsqrt(mean(x^2) + eps) * w, no mean subtraction, no bias
// (HF's LlamaRMSNorm / Qwen2RMSNorm compute it in fp32 too).
#pragma once

namespace kernels::cpu {

// inp, out are (N,C) with N = B*T rows; weight (C,); rstd (N,) saved for backward.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                     float eps);
// Accumulates: dinp (N,C) +=, dweight (C,) += ; dout (N,C). dweight uses the
// fixed-chunk reduction of reduce.h (deterministic for any thread count).
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int N, int C);

}  // namespace kernels::cpu
