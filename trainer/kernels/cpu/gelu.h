// GELU (tanh approximation, as GPT-2 and Megatron use), fp32 CPU reference.
// The CUDA kernel of the same name (kernels/cuda/gelu.cuh) is checked against it.
#pragma once

namespace kernels::cpu {

// out, inp are (N,)
void gelu_forward(float* out, const float* inp, int N);
// dinp += dout * gelu'(inp); all (N,)
void gelu_backward(float* dinp, const float* inp, const float* dout, int N);

}  // namespace kernels::cpu
