// Helpers shared by the kernels: the launch shape of the grid-stride elementwise
// kernels, alignment tests, and vector access (kVec elements of T per access, read as or
// written from fp32, in one 16-byte transaction when kVec * sizeof(T) == 16 (the caller
// checks alignment), else element by element).
#pragma once

#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// Elementwise kernels: 256 threads a block, grid-stride loops with the grid capped at
// 8192 blocks (about 8 waves on an H100).
constexpr int kElementwiseBlock = 256;
constexpr size_t kElementwiseMaxBlocks = 8192;
inline unsigned ElementwiseGrid(size_t work) {
  const size_t blocks = CEIL_DIV(work, static_cast<size_t>(kElementwiseBlock));
  return static_cast<unsigned>(
      blocks < 1 ? 1 : (blocks < kElementwiseMaxBlocks ? blocks : kElementwiseMaxBlocks));
}

inline bool AlignedTo(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}
inline bool Aligned16(const void* p) { return AlignedTo(p, 16); }

// kN consecutive elements of T moved as one load/store.
template <typename T, int kN>
struct alignas(sizeof(T) * kN) Pack {
  T v[kN];
};

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
