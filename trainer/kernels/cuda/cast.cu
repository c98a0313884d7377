// fp32 <-> floatX conversions (round to nearest even). For 16-bit floatX each thread converts 8
// elements: two 16-byte fp32 loads/stores and one 16-byte floatX load/store, when both
// pointers are 16-byte aligned; otherwise one element at a time. floatX == float is a copy.
#include <cstdint>
#include <type_traits>

#include "trainer/kernels/cuda/cast.cuh"
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

constexpr int kVec = 8;  // 16 bytes of a 16-bit floatX

// kPacked == false: unaligned pointers, every element through the tail loop.
template <typename floatX, bool kPacked>
__global__ void from_float_kernel(floatX* out, const float* in, size_t N) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t packs = 0;
  if constexpr (kPacked) {
    packs = N / kVec;
    for (size_t q = first; q < packs; q += stride) {
      const Pack<float, 4> lo = reinterpret_cast<const Pack<float, 4>*>(in)[2 * q];
      const Pack<float, 4> hi = reinterpret_cast<const Pack<float, 4>*>(in)[2 * q + 1];
      Pack<floatX, kVec> res;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        res.v[j] = FromFloat<floatX>(lo.v[j]);
        res.v[4 + j] = FromFloat<floatX>(hi.v[j]);
      }
      reinterpret_cast<Pack<floatX, kVec>*>(out)[q] = res;
    }
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) out[i] = FromFloat<floatX>(in[i]);
}

template <typename floatX, bool kPacked>
__global__ void to_float_kernel(float* out, const floatX* in, size_t N) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t packs = 0;
  if constexpr (kPacked) {
    packs = N / kVec;
    for (size_t q = first; q < packs; q += stride) {
      const Pack<floatX, kVec> x = reinterpret_cast<const Pack<floatX, kVec>*>(in)[q];
      Pack<float, 4> lo, hi;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        lo.v[j] = ToFloat<floatX>(x.v[j]);
        hi.v[j] = ToFloat<floatX>(x.v[4 + j]);
      }
      reinterpret_cast<Pack<float, 4>*>(out)[2 * q] = lo;
      reinterpret_cast<Pack<float, 4>*>(out)[2 * q + 1] = hi;
    }
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) out[i] = ToFloat<floatX>(in[i]);
}

coord::Status CopyFloats(float* out, const float* in, size_t N, cudaStream_t stream) {
  if (out != in) {
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out, in, N * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  }
  return coord::Status::Ok();
}

}  // namespace

template <typename floatX>
coord::Status cast_from_float(floatX* out, const float* in, size_t N, cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  if constexpr (std::is_same_v<floatX, float>) {
    return CopyFloats(out, in, N, stream);
  } else {
    if (Aligned16(out) && Aligned16(in)) {
      from_float_kernel<floatX, true>
          <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, in, N);
    } else {
      from_float_kernel<floatX, false>
          <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, in, N);
    }
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return coord::Status::Ok();
  }
}

template <typename floatX>
coord::Status cast_to_float(float* out, const floatX* in, size_t N, cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  if constexpr (std::is_same_v<floatX, float>) {
    return CopyFloats(out, in, N, stream);
  } else {
    if (Aligned16(out) && Aligned16(in)) {
      to_float_kernel<floatX, true>
          <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, in, N);
    } else {
      to_float_kernel<floatX, false>
          <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, in, N);
    }
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return coord::Status::Ok();
  }
}

#define INSTANTIATE(floatX)                                                                    \
  template coord::Status cast_from_float<floatX>(floatX*, const float*, size_t, cudaStream_t); \
  template coord::Status cast_to_float<floatX>(float*, const floatX*, size_t, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
