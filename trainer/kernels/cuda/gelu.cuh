// GELU (tanh approximation) on the GPU; launchers only. CPU twin: kernels/cpu/gelu.h.
// (The MLP's forward usually takes GELU from the fc matmul's epilogue, matmul.cuh;
// these are for the unfused path and the checks.)
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out, inp are (N,) device arrays of floatX.
template <typename floatX>
coord::Status gelu_forward(floatX* out, const floatX* inp, size_t N, cudaStream_t stream);
// dinp = dout * gelu'(inp) (overwrites; the CPU twin accumulates); all (N,).
template <typename floatX>
coord::Status gelu_backward(floatX* dinp, const floatX* inp, const floatX* dout, size_t N,
                            cudaStream_t stream);

#ifdef __CUDACC__
// The element functions, with the CPU twin's expressions (kernels/cpu/gelu.cc); also
// used by matmul.cu's unfused bias + GELU path.
__device__ __forceinline__ float GeluTanh(float x) {
  constexpr float kScale = 0.7978845608028654f;  // sqrt(2/pi)
  const float cube = 0.044715f * x * x * x;
  return 0.5f * x * (1.0f + tanhf(kScale * (x + cube)));
}
__device__ __forceinline__ float GeluTanhGrad(float x) {
  constexpr float kScale = 0.7978845608028654f;
  const float cube = 0.044715f * x * x * x;
  const float tanh_out = tanhf(kScale * (x + cube));
  const float sech2 = 1.0f - tanh_out * tanh_out;
  return 0.5f * (1.0f + tanh_out) + x * 0.5f * sech2 * kScale * (1.0f + 3.0f * 0.044715f * x * x);
}
#endif

}  // namespace kernels::cuda
