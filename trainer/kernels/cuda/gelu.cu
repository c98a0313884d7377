// GELU (tanh approximation) kernels over T in {float, bf16, fp16}, computed in fp32 with
// the CPU twin's expressions. Memory-bound: when every pointer is 16-byte aligned each
// thread moves 16-byte packs (4 or 8 elements) and the N % pack tail goes one element at
// a time; otherwise the whole range goes one element at a time.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/gelu.cuh"

namespace kernels::cuda {

namespace {

constexpr int kBlock = 256;
// Grid-stride cap: ~8 waves of 256-thread blocks on an H100, more only adds launch work.
constexpr size_t kMaxBlocks = 8192;
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned GridFor(size_t work) {
  const size_t blocks = CEIL_DIV(work, static_cast<size_t>(kBlock));
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

__device__ __forceinline__ float gelu(float x) {
  float cube = 0.044715f * x * x * x;
  return 0.5f * x * (1.0f + tanhf(kGeluScale * (x + cube)));
}

__device__ __forceinline__ float gelu_grad(float x) {
  float cube = 0.044715f * x * x * x;
  float tanh_out = tanhf(kGeluScale * (x + cube));
  float sech2 = 1.0f - tanh_out * tanh_out;
  return 0.5f * (1.0f + tanh_out) +
         x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
}

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
    for (int j = 0; j < kVec; ++j) res.v[j] = FromFloat<T>(gelu(ToFloat<T>(in.v[j])));
    reinterpret_cast<P*>(out)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    out[i] = FromFloat<T>(gelu(ToFloat<T>(inp[i])));
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
      res.v[j] = FromFloat<T>(gelu_grad(ToFloat<T>(x.v[j])) * ToFloat<T>(g.v[j]));
    }
    reinterpret_cast<P*>(dinp)[p] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    dinp[i] = FromFloat<T>(gelu_grad(ToFloat<T>(inp[i])) * ToFloat<T>(dout[i]));
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
    gelu_forward_kernel<T, kVec><<<GridFor(N / kVec), kBlock, 0, stream>>>(out, inp, N);
  } else {
    gelu_forward_kernel<T, 1><<<GridFor(N), kBlock, 0, stream>>>(out, inp, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

template <typename T>
std::string gelu_backward(T* dinp, const T* inp, const T* dout, size_t N, cudaStream_t stream) {
  if (N == 0) return "";
  constexpr int kVec = 16 / sizeof(T);
  if (Aligned16(dinp) && Aligned16(inp) && Aligned16(dout)) {
    gelu_backward_kernel<T, kVec><<<GridFor(N / kVec), kBlock, 0, stream>>>(dinp, inp, dout, N);
  } else {
    gelu_backward_kernel<T, 1><<<GridFor(N), kBlock, 0, stream>>>(dinp, inp, dout, N);
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
