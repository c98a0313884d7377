// Token + position embedding on the GPU. CPU twin: kernels/cpu/encoder.h.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (B,T,C) = wte[inp[b,t]] + wpe[t], in T (the sum is formed in fp32, then
// rounded). inp (B,T) device token ids in [0, Vp).
template <typename T>
std::string encoder_forward(T* out, const int* inp, const T* wte, const T* wpe, int B, int T_,
                            int C, cudaStream_t stream);
// The fp32 gradients accumulate: dwte (Vp,C) += scatter of dout by inp, dwpe (maxT,C)
// += sum over b. Deterministic (no floating-point atomics): the same bits every run.
// scratch: encoder_backward_scratch_bytes(B, T_) bytes of device memory.
size_t encoder_backward_scratch_bytes(int B, int T_);
template <typename T>
std::string encoder_backward(float* dwte, float* dwpe, const T* dout, const int* inp, int B, int T_,
                             int C, void* scratch, cudaStream_t stream);

}  // namespace kernels::cuda
