// GELU (tanh approximation) kernels over floatX in {float, bf16, fp16}, computed in fp32 with
// the CPU twin's expressions. Memory-bound: when every pointer is 16-byte aligned each
// thread moves 16-byte packs (4 or 8 elements) and the N % pack tail goes one element at
// a time; otherwise the whole range goes one element at a time.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/gelu.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

// Packs [0, N / kVec) through the grid-stride loop, then the last N % kVec elements.
// kVec == 1 is the unaligned path (no tail).
template <typename floatX, int kVec>
__global__ void gelu_forward_kernel(floatX* out, const floatX* inp, size_t N) {
  using P = Pack<floatX, kVec>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  for (size_t p = first; p < packs; p += stride) {
    const P in = reinterpret_cast<const P*>(inp)[p];
    P res;
#pragma unroll
    for (int j = 0; j < kVec; ++j) res.v[j] = FromFloat<floatX>(GeluTanh(ToFloat<floatX>(in.v[j])));
    reinterpret_cast<P*>(out)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    out[i] = FromFloat<floatX>(GeluTanh(ToFloat<floatX>(inp[i])));
  }
}

template <typename floatX, int kVec>
__global__ void gelu_backward_kernel(floatX* dinp, const floatX* inp, const floatX* dout,
                                     size_t N) {
  using P = Pack<floatX, kVec>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  for (size_t p = first; p < packs; p += stride) {
    const P x = reinterpret_cast<const P*>(inp)[p];
    const P g = reinterpret_cast<const P*>(dout)[p];
    P res;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      res.v[j] = FromFloat<floatX>(GeluTanhGrad(ToFloat<floatX>(x.v[j])) * ToFloat<floatX>(g.v[j]));
    }
    reinterpret_cast<P*>(dinp)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    dinp[i] = FromFloat<floatX>(GeluTanhGrad(ToFloat<floatX>(inp[i])) * ToFloat<floatX>(dout[i]));
  }
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status gelu_forward(floatX* out, const floatX* inp, size_t N, cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  if (Aligned16(out) && Aligned16(inp)) {
    gelu_forward_kernel<floatX, kVec>
        <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, inp, N);
  } else {
    gelu_forward_kernel<floatX, 1>
        <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, inp, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

template <typename floatX>
coord::Status gelu_backward(floatX* dinp, const floatX* inp, const floatX* dout, size_t N,
                            cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  if (Aligned16(dinp) && Aligned16(inp) && Aligned16(dout)) {
    gelu_backward_kernel<floatX, kVec>
        <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(dinp, inp, dout, N);
  } else {
    gelu_backward_kernel<floatX, 1>
        <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(dinp, inp, dout, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                   \
  template coord::Status gelu_forward<floatX>(floatX*, const floatX*, size_t, cudaStream_t);  \
  template coord::Status gelu_backward<floatX>(floatX*, const floatX*, const floatX*, size_t, \
                                               cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
