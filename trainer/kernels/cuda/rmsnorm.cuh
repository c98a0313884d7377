// RMSNorm over the last dimension on the GPU (Llama / Qwen2). CPU twin:
// kernels/cpu/rmsnorm.h. Statistics and the weight gradient in fp32 whatever the
// compute type.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,C) in floatX = x * rsqrt(mean(x^2) + eps) * w; rstd (N,) fp32 saved for
// backward; weight (C,) in floatX.
template <typename floatX>
coord::Status rmsnorm_forward(floatX* out, float* rstd, const floatX* inp, const floatX* weight,
                              int N, int C, float eps, cudaStream_t stream);
// dinp (N,C) += (in floatX); dweight (C,) fp32 += . Deterministic: the rows are cut
// into the CPU twin's fixed chunks (reduce.h), each chunk's column sums go to scratch
// and are added in chunk order. scratch: rmsnorm_backward_scratch_floats(N, C) floats.
size_t rmsnorm_backward_scratch_floats(int N, int C);
template <typename floatX>
coord::Status rmsnorm_backward(floatX* dinp, float* dweight, const floatX* dout, const floatX* inp,
                               const floatX* weight, const float* rstd, int N, int C,
                               float* scratch, cudaStream_t stream);

}  // namespace kernels::cuda
