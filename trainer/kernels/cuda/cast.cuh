// Conversions between the fp32 master copy and the compute copy of the parameters.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// out (N,) = T(in), round to nearest even.
template <typename T>
std::string cast_from_float(T* out, const float* in, size_t N, cudaStream_t stream);
// out (N,) = float(in).
template <typename T>
std::string cast_to_float(float* out, const T* in, size_t N, cudaStream_t stream);

}  // namespace kernels::cuda
