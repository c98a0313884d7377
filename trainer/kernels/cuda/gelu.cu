// GELU (tanh approximation) kernels over T in {float, bf16, fp16}, computed in fp32 with
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
template <typename T, int kVec>
__global__ void gelu_forward_kernel(T* out, const T* inp, size_t N) {
  using P = Pack<T, kVec>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  for (size_t p = first; p < packs; p += stride) {
    const P in = reinterpret_cast<const P*>(inp)[p];
    P res;
#pragma unroll
    for (int j = 0; j < kVec; ++j) res.v[j] = FromFloat<T>(GeluTanh(ToFloat<T>(in.v[j])));
    reinterpret_cast<P*>(out)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    out[i] = FromFloat<T>(GeluTanh(ToFloat<T>(inp[i])));
  }
}

template <typename T, int kVec>
__global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, size_t N) {
  using P = Pack<T, kVec>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  for (size_t p = first; p < packs; p += stride) {
    const P x = reinterpret_cast<const P*>(inp)[p];
    const P g = reinterpret_cast<const P*>(dout)[p];
    P res;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      res.v[j] = FromFloat<T>(GeluTanhGrad(ToFloat<T>(x.v[j])) * ToFloat<T>(g.v[j]));
    }
    reinterpret_cast<P*>(dinp)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    dinp[i] = FromFloat<T>(GeluTanhGrad(ToFloat<T>(inp[i])) * ToFloat<T>(dout[i]));
  }
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename T>
std::string gelu_forward(T* out, const T* inp, size_t N, cudaStream_t stream) {
  if (N == 0) return "";
  constexpr int kVec = 16 / sizeof(T);
  if (Aligned16(out) && Aligned16(inp)) {
    gelu_forward_kernel<T, kVec>
        <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, inp, N);
  } else {
    gelu_forward_kernel<T, 1><<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, inp, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

template <typename T>
std::string gelu_backward(T* dinp, const T* inp, const T* dout, size_t N, cudaStream_t stream) {
  if (N == 0) return "";
  constexpr int kVec = 16 / sizeof(T);
  if (Aligned16(dinp) && Aligned16(inp) && Aligned16(dout)) {
    gelu_backward_kernel<T, kVec>
        <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(dinp, inp, dout, N);
  } else {
    gelu_backward_kernel<T, 1>
        <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(dinp, inp, dout, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

#define INSTANTIATE(T)                                                      \
  template std::string gelu_forward<T>(T*, const T*, size_t, cudaStream_t); \
  template std::string gelu_backward<T>(T*, const T*, const T*, size_t, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
