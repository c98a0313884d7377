// Residual add, optionally fused with the hidden dropout of the branch. CPU twins:
// kernels/cpu/residual.h and kernels/cpu/dropout.h (same Philox masks, bit for bit).
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = residual + dropout(x), in floatX (sum in fp32). p == 0: no dropout.
// Masks as kernels/cpu/dropout.h: with row_elems > 0 row r draws SampleStream(rng, r)
// at its own index. out may alias residual or x.
template <typename floatX>
coord::Status residual_dropout_forward(floatX* out, const floatX* residual, const floatX* x,
                                       size_t N, float p, const trainer::RngStream& rng,
                                       size_t row_elems, cudaStream_t stream);

}  // namespace kernels::cuda
