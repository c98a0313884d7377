// Vector access helpers shared by the kernels: kVec elements of T per access, read as
// or written from fp32, in one 16-byte transaction when kVec * sizeof(T) == 16 (the
// caller checks alignment), else element by element.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

template <typename T, int kVec>
__device__ inline void LoadAsFloat(const T* p, float (&out)[kVec]) {
  if constexpr (kVec * sizeof(T) == 16) {
    const int4 raw = *reinterpret_cast<const int4*>(p);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = ToFloat<T>(e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = ToFloat<T>(p[k]);
  }
}

template <typename T, int kVec>
__device__ inline void StoreFromFloat(T* p, const float (&in)[kVec]) {
  if constexpr (kVec * sizeof(T) == 16) {
    int4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) e[k] = FromFloat<T>(in[k]);
    *reinterpret_cast<int4*>(p) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) p[k] = FromFloat<T>(in[k]);
  }
}

}  // namespace kernels::cuda
