// Helpers shared by the kernels: the launch shape of the grid-stride elementwise
// kernels, alignment tests, and vector access (kVec elements of floatX per access, read as or
// written from fp32, in one 16-byte transaction when kVec * sizeof(floatX) == 16 (the caller
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

// kN consecutive elements of floatX moved as one load/store.
template <typename floatX, int kN>
struct alignas(sizeof(floatX) * kN) Pack {
  floatX v[kN];
};

template <typename floatX, int kVec>
__device__ inline void LoadAsFloat(const floatX* p, float (&out)[kVec]) {
  if constexpr (kVec * sizeof(floatX) == 16) {
    const int4 raw = *reinterpret_cast<const int4*>(p);
    const floatX* e = reinterpret_cast<const floatX*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = ToFloat<floatX>(e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = ToFloat<floatX>(p[k]);
  }
}

template <typename floatX, int kVec>
__device__ inline void StoreFromFloat(floatX* p, const float (&in)[kVec]) {
  if constexpr (kVec * sizeof(floatX) == 16) {
    int4 raw;
    floatX* e = reinterpret_cast<floatX*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) e[k] = FromFloat<floatX>(in[k]);
    *reinterpret_cast<int4*>(p) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) p[k] = FromFloat<floatX>(in[k]);
  }
}

}  // namespace kernels::cuda
