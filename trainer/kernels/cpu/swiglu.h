// SwiGLU activation (Llama / Qwen2 MLP, Megatron's --swiglu), fp32 CPU reference:
// out = silu(gate) * up with silu(g) = g * sigmoid(g). The fc output holds each row
// as [gate | up] (Megatron's fused layout; per tensor-parallel rank its halves).
#pragma once

namespace kernels::cpu {

// inp (N, 2F) rows [gate (F) | up (F)]; out (N, F).
void swiglu_forward(float* out, const float* inp, int N, int F);
// dinp (N, 2F) += gradient for dout (N, F); inp as in forward.
void swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int F);

}  // namespace kernels::cpu
