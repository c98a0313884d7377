// SwiGLU (see swiglu.cuh): grid-stride over the N x F outputs, the CPU twin's
// expressions in fp32 (s = 1 / (1 + exp(-g)); d gate = dy up s (1 + g (1 - s)),
// d up = dy g s).
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/swiglu.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

// ----------------------------------------------------------------------------
// kernels

template <typename floatX>
__global__ void swiglu_forward_kernel(floatX* __restrict__ out, const floatX* __restrict__ inp,
                                      int N, int F) {
  const size_t total = static_cast<size_t>(N) * F;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const size_t n = idx / F, i = idx % F;
    const float g = ToFloat<floatX>(inp[n * 2 * F + i]);
    const float u = ToFloat<floatX>(inp[n * 2 * F + F + i]);
    out[idx] = FromFloat<floatX>(g / (1.0f + expf(-g)) * u);
  }
}

template <typename floatX>
__global__ void swiglu_backward_kernel(floatX* __restrict__ dinp, const floatX* __restrict__ inp,
                                       const floatX* __restrict__ dout, int N, int F) {
  const size_t total = static_cast<size_t>(N) * F;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const size_t n = idx / F, i = idx % F;
    const float g = ToFloat<floatX>(inp[n * 2 * F + i]);
    const float u = ToFloat<floatX>(inp[n * 2 * F + F + i]);
    const float dy = ToFloat<floatX>(dout[idx]);
    const float s = 1.0f / (1.0f + expf(-g));
    dinp[n * 2 * F + i] = FromFloat<floatX>(dy * u * s * (1.0f + g * (1.0f - s)));
    dinp[n * 2 * F + F + i] = FromFloat<floatX>(dy * g * s);
  }
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status swiglu_forward(floatX* out, const floatX* inp, int N, int F, cudaStream_t stream) {
  if (N == 0 || F == 0) return coord::Status::Ok();
  swiglu_forward_kernel<floatX><<<ElementwiseGrid(static_cast<size_t>(N) * F), kElementwiseBlock,
                                  0, stream>>>(out, inp, N, F);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

template <typename floatX>
coord::Status swiglu_backward(floatX* dinp, const floatX* inp, const floatX* dout, int N, int F,
                              cudaStream_t stream) {
  if (N == 0 || F == 0) return coord::Status::Ok();
  swiglu_backward_kernel<floatX><<<ElementwiseGrid(static_cast<size_t>(N) * F), kElementwiseBlock,
                                   0, stream>>>(dinp, inp, dout, N, F);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                    \
  template coord::Status swiglu_forward<floatX>(floatX*, const floatX*, int, int,              \
                                                cudaStream_t);                                 \
  template coord::Status swiglu_backward<floatX>(floatX*, const floatX*, const floatX*, int, int, \
                                                 cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
