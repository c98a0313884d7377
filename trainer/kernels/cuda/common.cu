// CUDA error statuses and dtype names.
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

coord::Status CudaError(cudaError_t err, const char* expr, const char* file, int line) {
  return coord::Internal(std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " +
                         cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "fp32";
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat16:
      return "fp16";
  }
  return "?";
}

}  // namespace kernels::cuda
