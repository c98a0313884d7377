// Causal multi-head attention as one fused kernel per direction (FlashAttention-2's
// algorithm): tiles of q, k, v stay in shared memory and registers, softmax is formed
// online, and the (T, T) score matrix never reaches device memory; forward keeps only
// the row log-sum-exp. Attention dropout draws the CPU twin's Philox masks
// (kernels/cpu/attention.h: element (h*T + t)*T + t2 of SampleStream(rng, b)), so the
// GPU and the CPU drop the same probabilities.
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// qkv (B,T,3C) in floatX, [q | k | v] each head-major (NH, HS); out (B,T,C) in floatX;
// lse (B,NH,T) fp32. HS = C / NH must be 32, 64 or 128.
template <typename floatX>
coord::Status attention_forward(floatX* out, float* lse, const floatX* qkv, int B, int T, int C,
                                int NH, float p, const trainer::RngStream& rng,
                                cudaStream_t stream);
// dqkv (B,T,3C) OVERWRITTEN with the gradient; dout (B,T,C); out, lse from forward;
// same p and rng. scratch: attention_backward_scratch_floats(B, T, C, NH) floats.
size_t attention_backward_scratch_floats(int B, int T, int C, int NH);
template <typename floatX>
coord::Status attention_backward(floatX* dqkv, const floatX* dout, const floatX* qkv,
                                 const floatX* out, const float* lse, int B, int T, int C, int NH,
                                 float p, const trainer::RngStream& rng, float* scratch,
                                 cudaStream_t stream);

}  // namespace kernels::cuda
