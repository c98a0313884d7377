// Dropout with counter-based masks on the GPU: the same element is kept as on the
// CPU (kernels/cpu/dropout.h), so GPU and CPU runs draw identical masks.
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = mask(inp) / (1-p); in place allowed. row_elems as the CPU twin.
// Backward is the same call on dout.
template <typename floatX>
coord::Status dropout_forward(floatX* out, const floatX* inp, size_t N, float p,
                              const trainer::RngStream& rng, size_t row_elems, cudaStream_t stream);

#ifdef __CUDACC__
// Whether the element drawing `word` (its word of the row's Philox block) is kept:
// uniform = (word >> 8) * 2^-24 >= p, exactly as the CPU's dropout_keep.
__device__ __forceinline__ bool DropoutKeep(uint32_t word, float p) {
  return static_cast<float>(word >> 8) * 0x1.0p-24f >= p;
}
#endif

}  // namespace kernels::cuda
