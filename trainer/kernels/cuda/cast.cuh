// Conversions between the fp32 master copy and the compute copy of the parameters.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = floatX(in), round to nearest even.
template <typename floatX>
coord::Status cast_from_float(floatX* out, const float* in, size_t N, cudaStream_t stream);
// out (N,) = float(in).
template <typename floatX>
coord::Status cast_to_float(float* out, const floatX* in, size_t N, cudaStream_t stream);

}  // namespace kernels::cuda
