// Residual add, optionally fused with the hidden dropout of the branch. CPU twins:
// kernels/cpu/residual.h and kernels/cpu/dropout.h (same Philox masks, bit for bit).
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = residual + dropout(x), in T (sum in fp32). p == 0: no dropout.
// Masks as kernels/cpu/dropout.h: with row_elems > 0 row r draws SampleStream(rng, r)
// at its own index. out may alias residual or x.
template <typename T>
std::string residual_dropout_forward(T* out, const T* residual, const T* x, size_t N, float p,
                                     const trainer::RngStream& rng, size_t row_elems,
                                     cudaStream_t stream);

}  // namespace kernels::cuda
