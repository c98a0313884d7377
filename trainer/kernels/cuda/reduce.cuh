// Reductions over the flat fp32 gradient buffer: the squared global norm (which is
// also the fp16 overflow check: inf or NaN anywhere makes it non-finite) and scaling.
// CPU twins: trainer/optim/adamw.h SumOfSquares / ScaleInPlace.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// *out (device, one double) += sum of x[i]^2 in double; deterministic for a given N
// (fixed grid, partials added in a fixed order). scratch: reduce_scratch_doubles()
// doubles.
size_t reduce_scratch_doubles();
coord::Status sum_of_squares(double* out, const float* x, size_t N, double* scratch,
                             cudaStream_t stream);
// x[i] *= coef.
coord::Status scale_in_place(float* x, size_t N, float coef, cudaStream_t stream);

}  // namespace kernels::cuda
