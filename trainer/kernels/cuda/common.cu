// CUDA error formatting.
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

std::string CudaErrorText(cudaError_t err, const char* expr, const char* file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " +
         cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
}

}  // namespace kernels::cuda
