// RoPE (see rope.cuh): one thread per (token, head vector of q or k, pair i), each
// rotating x[i] with x[i + HS/2] by the token's angle; sign -1 rotates back. Pairs are
// disjoint, so the in-place update has no races.
#include <string>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/rope.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

// ----------------------------------------------------------------------------
// kernels

template <typename floatX>
__global__ void rope_kernel(floatX* __restrict__ qkv, const float* __restrict__ cos,
                            const float* __restrict__ sin, int BT, int T, QkvLayout l,
                            const int* __restrict__ pos, float sign) {
  const int half = l.HS / 2, vectors = l.NH + l.KV;
  const size_t total = static_cast<size_t>(BT) * vectors * half;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int i = static_cast<int>(idx % half);
    const int vec = static_cast<int>(idx / half % vectors);
    const int bt = static_cast<int>(idx / (static_cast<size_t>(half) * vectors));
    const int p = pos != nullptr ? pos[bt] : bt % T;
    const float c = cos[static_cast<size_t>(p) * half + i];
    const float s = sign * sin[static_cast<size_t>(p) * half + i];
    floatX* x = qkv + static_cast<size_t>(bt) * l.row() + (vec < l.NH ? l.q(vec) : l.k(vec - l.NH));
    const float a = ToFloat<floatX>(x[i]), b = ToFloat<floatX>(x[i + half]);
    x[i] = FromFloat<floatX>(a * c - b * s);
    x[i + half] = FromFloat<floatX>(b * c + a * s);
  }
}

template <typename floatX>
coord::Status Launch(floatX* qkv, const float* cos, const float* sin, int B, int T,
                     const QkvLayout& l, const int* pos, float sign, cudaStream_t stream,
                     const char* name) {
  if (B == 0 || T == 0) return coord::Status::Ok();
  if (l.HS % 2 != 0 || l.KV <= 0 || l.NH % l.KV != 0) {
    return coord::InvalidArgument(std::string(name) + ": head size " + std::to_string(l.HS) +
                                  " must be even and KV heads (" + std::to_string(l.KV) +
                                  ") must divide the " + std::to_string(l.NH) + " query heads");
  }
  const size_t work = static_cast<size_t>(B) * T * (l.NH + l.KV) * (l.HS / 2);
  rope_kernel<floatX><<<ElementwiseGrid(work), kElementwiseBlock, 0, stream>>>(qkv, cos, sin, B * T,
                                                                              T, l, pos, sign);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status rope_forward(floatX* qkv, const float* cos, const float* sin, int B, int T,
                           const QkvLayout& layout, const int* pos, cudaStream_t stream) {
  return Launch(qkv, cos, sin, B, T, layout, pos, 1.0f, stream, "rope_forward");
}

template <typename floatX>
coord::Status rope_backward(floatX* dqkv, const float* cos, const float* sin, int B, int T,
                            const QkvLayout& layout, const int* pos, cudaStream_t stream) {
  return Launch(dqkv, cos, sin, B, T, layout, pos, -1.0f, stream, "rope_backward");
}

#define INSTANTIATE(floatX)                                                                     \
  template coord::Status rope_forward<floatX>(floatX*, const float*, const float*, int, int,    \
                                              const QkvLayout&, const int*, cudaStream_t);      \
  template coord::Status rope_backward<floatX>(floatX*, const float*, const float*, int, int,   \
                                               const QkvLayout&, const int*, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
