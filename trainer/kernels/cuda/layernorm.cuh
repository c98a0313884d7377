// LayerNorm over the last dimension on the GPU. CPU twin: kernels/cpu/layernorm.h.
// Statistics and parameter gradients in fp32 whatever the compute type.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,C) in T; mean, rstd (N,) fp32 saved for backward; weight, bias (C,) in T.
template <typename T>
std::string layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                              const T* bias, int N, int C, float eps, cudaStream_t stream);
// dinp (N,C) += (in T); dweight, dbias (C,) fp32 += . Deterministic (fixed-order
// partial sums, no atomics). scratch: layernorm_backward_scratch_floats(N, C) floats.
size_t layernorm_backward_scratch_floats(int N, int C);
template <typename T>
std::string layernorm_backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp,
                               const T* weight, const float* mean, const float* rstd, int N, int C,
                               float* scratch, cudaStream_t stream);

}  // namespace kernels::cuda
