// fp32 <-> T conversions (round to nearest even). For 16-bit T each thread converts 8
// elements: two 16-byte fp32 loads/stores and one 16-byte T load/store, when both
// pointers are 16-byte aligned; otherwise one element at a time. T == float is a copy.
#include <cstdint>
#include <type_traits>

#include "trainer/kernels/cuda/cast.cuh"
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

constexpr int kVec = 8;  // 16 bytes of a 16-bit T

// kPacked == false: unaligned pointers, every element through the tail loop.
template <typename T, bool kPacked>
__global__ void from_float_kernel(T* out, const float* in, size_t N) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t packs = 0;
  if constexpr (kPacked) {
    packs = N / kVec;
    for (size_t q = first; q < packs; q += stride) {
      const Pack<float, 4> lo = reinterpret_cast<const Pack<float, 4>*>(in)[2 * q];
      const Pack<float, 4> hi = reinterpret_cast<const Pack<float, 4>*>(in)[2 * q + 1];
      Pack<T, kVec> res;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        res.v[j] = FromFloat<T>(lo.v[j]);
        res.v[4 + j] = FromFloat<T>(hi.v[j]);
      }
      reinterpret_cast<Pack<T, kVec>*>(out)[q] = res;
    }
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) out[i] = FromFloat<T>(in[i]);
}

template <typename T, bool kPacked>
__global__ void to_float_kernel(float* out, const T* in, size_t N) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t packs = 0;
  if constexpr (kPacked) {
    packs = N / kVec;
    for (size_t q = first; q < packs; q += stride) {
      const Pack<T, kVec> x = reinterpret_cast<const Pack<T, kVec>*>(in)[q];
      Pack<float, 4> lo, hi;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        lo.v[j] = ToFloat<T>(x.v[j]);
        hi.v[j] = ToFloat<T>(x.v[4 + j]);
      }
      reinterpret_cast<Pack<float, 4>*>(out)[2 * q] = lo;
      reinterpret_cast<Pack<float, 4>*>(out)[2 * q + 1] = hi;
    }
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) out[i] = ToFloat<T>(in[i]);
}

std::string CopyFloats(float* out, const float* in, size_t N, cudaStream_t stream) {
  if (out != in) {
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out, in, N * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  }
  return "";
}

}  // namespace

template <typename T>
std::string cast_from_float(T* out, const float* in, size_t N, cudaStream_t stream) {
  if (N == 0) return "";
  if constexpr (std::is_same_v<T, float>) {
    return CopyFloats(out, in, N, stream);
  } else {
    if (Aligned16(out) && Aligned16(in)) {
      from_float_kernel<T, true>
          <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, in, N);
    } else {
      from_float_kernel<T, false><<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, in, N);
    }
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return "";
  }
}

template <typename T>
std::string cast_to_float(float* out, const T* in, size_t N, cudaStream_t stream) {
  if (N == 0) return "";
  if constexpr (std::is_same_v<T, float>) {
    return CopyFloats(out, in, N, stream);
  } else {
    if (Aligned16(out) && Aligned16(in)) {
      to_float_kernel<T, true>
          <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, in, N);
    } else {
      to_float_kernel<T, false><<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, in, N);
    }
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return "";
  }
}

#define INSTANTIATE(T)                                                             \
  template std::string cast_from_float<T>(T*, const float*, size_t, cudaStream_t); \
  template std::string cast_to_float<T>(float*, const T*, size_t, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
