// Dropout with counter-based masks on the GPU: the same element is kept as on the
// CPU (kernels/cpu/dropout.h), so GPU and CPU runs draw identical masks.
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = mask(inp) / (1-p); in place allowed. row_elems as the CPU twin.
// Backward is the same call on dout.
template <typename T>
std::string dropout_forward(T* out, const T* inp, size_t N, float p, const trainer::RngStream& rng,
                            size_t row_elems, cudaStream_t stream);

}  // namespace kernels::cuda
