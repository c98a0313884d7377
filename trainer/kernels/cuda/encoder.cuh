// Token + position embedding on the GPU. CPU twin: kernels/cpu/encoder.h.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (B,T,C) = wte[inp[b,t]] + wpe[t], in floatX (the sum is formed in fp32, then
// rounded). inp (B,T) device token ids in [0, Vp).
template <typename floatX>
coord::Status encoder_forward(floatX* out, const int* inp, const floatX* wte, const floatX* wpe,
                              int B, int T, int C, cudaStream_t stream);
// The fp32 gradients accumulate: dwte (Vp,C) += scatter of dout by inp, dwpe (maxT,C)
// += sum over b. Deterministic (no floating-point atomics): the same bits every run.
// scratch: encoder_backward_scratch_bytes(B, T) bytes of device memory.
size_t encoder_backward_scratch_bytes(int B, int T);
template <typename floatX>
coord::Status encoder_backward(float* dwte, float* dwpe, const floatX* dout, const int* inp, int B,
                               int T, int C, void* scratch, cudaStream_t stream);

}  // namespace kernels::cuda
