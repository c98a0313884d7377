// SwiGLU on the GPU: out = silu(gate) * up over the fc output's rows [gate | up].
// CPU twin: kernels/cpu/swiglu.h. Computed in fp32 whatever the compute type.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// inp (N, 2F) rows [gate (F) | up (F)]; out (N, F); floatX device arrays.
template <typename floatX>
coord::Status swiglu_forward(floatX* out, const floatX* inp, int N, int F, cudaStream_t stream);
// dinp (N, 2F) = the gradient for dout (N, F) (overwrites, as gelu_backward; the CPU
// twin accumulates).
template <typename floatX>
coord::Status swiglu_backward(floatX* dinp, const floatX* inp, const floatX* dout, int N, int F,
                              cudaStream_t stream);

}  // namespace kernels::cuda
