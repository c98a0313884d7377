// CUDA helpers shared by every kernel file: error checks that name the call, file
// and line (returned as a coord::Status, never exit() in library code), CEIL_DIV, and
// the three compute types of the precision modes (fp32, bf16, fp16) with their fp32
// conversions. Launchers are templates over the compute type floatX, declared in each
// op's .cuh and explicitly instantiated in its .cu for float, __nv_bfloat16 and
// __half (COORD_INSTANTIATE_FLOAT_TYPES), so host code compiled by g++ can call them.
// Launchers return coord::Status: INVALID_ARGUMENT (or FAILED_PRECONDITION) naming the
// launcher and the sizes it refused, INTERNAL for a failed CUDA or cuBLASLt call.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/status.h"

#define CEIL_DIV(a, b) (((a) + (b)-1) / (b))

namespace kernels::cuda {

// INTERNAL "file:line: expr: cudaErrorName: description": a failed CUDA runtime call.
coord::Status CudaError(cudaError_t err, const char* expr, const char* file, int line);

// The compute (activation / weight-copy) type of a precision mode.
enum class DType { kFloat32, kBFloat16, kFloat16 };
const char* DTypeName(DType t);  // "fp32", "bf16", "fp16"
inline size_t DTypeSize(DType t) { return t == DType::kFloat32 ? 4 : 2; }
template <typename floatX>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType DTypeOf<__nv_bfloat16>() {
  return DType::kBFloat16;
}
template <>
constexpr DType DTypeOf<__half>() {
  return DType::kFloat16;
}

// fp32 <-> floatX, on host and device (round to nearest even).
template <typename floatX>
__host__ __device__ inline float ToFloat(floatX x);
template <>
__host__ __device__ inline float ToFloat<float>(float x) {
  return x;
}
template <>
__host__ __device__ inline float ToFloat<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <>
__host__ __device__ inline float ToFloat<__half>(__half x) {
  return __half2float(x);
}
template <typename floatX>
__host__ __device__ inline floatX FromFloat(float x);
template <>
__host__ __device__ inline float FromFloat<float>(float x) {
  return x;
}
template <>
__host__ __device__ inline __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__host__ __device__ inline __half FromFloat<__half>(float x) {
  return __float2half(x);
}

}  // namespace kernels::cuda

// Returns CudaError(...) from the enclosing function (coord::Status or StatusOr) when
// the CUDA runtime call `expr` fails. Launcher results pass through RETURN_IF_ERROR.
#define CUDA_RETURN_IF_ERROR(expr)                                                           \
  do {                                                                                       \
    cudaError_t _e = (expr);                                                                 \
    if (_e != cudaSuccess) return ::kernels::cuda::CudaError(_e, #expr, __FILE__, __LINE__); \
  } while (0)

// Explicit instantiation of a launcher template for the three compute types:
// COORD_INSTANTIATE_FLOAT_TYPES(MACRO) expands MACRO(float), MACRO(__nv_bfloat16),
// MACRO(__half).
#define COORD_INSTANTIATE_FLOAT_TYPES(X) X(float) X(__nv_bfloat16) X(__half)
