// CUDA helpers shared by every kernel file: error checks that name the call,
// file and line (returned as a message, never exit() in library code), CEIL_DIV.
#pragma once

#include <cuda_runtime.h>

#include <string>

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

namespace kernels::cuda {

// "" when ok, else "file:line: expr: cudaErrorName: description".
std::string CudaErrorText(cudaError_t err, const char* expr, const char* file, int line);

}  // namespace kernels::cuda

#define CUDA_RETURN_IF_ERROR(expr)                                                       \
  do {                                                                                   \
    cudaError_t _e = (expr);                                                             \
    if (_e != cudaSuccess) return ::kernels::cuda::CudaErrorText(_e, #expr, __FILE__, __LINE__); \
  } while (0)
