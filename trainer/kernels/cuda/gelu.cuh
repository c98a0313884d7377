// GELU (tanh approximation) on the GPU; launchers only. CPU twin: kernels/cpu/gelu.h.
// (The MLP's forward usually takes GELU from the fc matmul's epilogue, matmul.cuh;
// these are for the unfused path and the checks.)
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out, inp are (N,) device arrays of T. Returns "" or the CUDA error text.
template <typename T>
std::string gelu_forward(T* out, const T* inp, size_t N, cudaStream_t stream);
// dinp = dout * gelu'(inp) (overwrites; the CPU twin accumulates); all (N,).
template <typename T>
std::string gelu_backward(T* dinp, const T* inp, const T* dout, size_t N, cudaStream_t stream);

}  // namespace kernels::cuda
