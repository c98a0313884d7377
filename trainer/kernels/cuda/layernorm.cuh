// LayerNorm over the last dimension on the GPU. CPU twin: kernels/cpu/layernorm.h.
// Statistics and parameter gradients in fp32 whatever the compute type.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,C) in floatX; mean, rstd (N,) fp32 saved for backward; weight, bias (C,) in floatX.
template <typename floatX>
coord::Status layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp,
                                const floatX* weight, const floatX* bias, int N, int C, float eps,
                                cudaStream_t stream);
// dinp (N,C) += (in floatX); dweight, dbias (C,) fp32 += . Deterministic (fixed-order
// partial sums, no atomics). scratch: layernorm_backward_scratch_floats(N, C) floats.
size_t layernorm_backward_scratch_floats(int N, int C);
template <typename floatX>
coord::Status layernorm_backward(floatX* dinp, float* dweight, float* dbias, const floatX* dout,
                                 const floatX* inp, const floatX* weight, const float* mean,
                                 const float* rstd, int N, int C, float* scratch,
                                 cudaStream_t stream);

}  // namespace kernels::cuda
