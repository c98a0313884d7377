// GELU (tanh) on the GPU; launchers only. CPU twin: kernels/cpu/gelu.h.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace kernels::cuda {

// out, inp are (N,) device pointers. Returns "" or the CUDA error text.
std::string gelu_forward(float* out, const float* inp, int N, cudaStream_t stream);
// dinp += dout * gelu'(inp); all (N,) device pointers.
std::string gelu_backward(float* dinp, const float* inp, const float* dout, int N,
                          cudaStream_t stream);

}  // namespace kernels::cuda
