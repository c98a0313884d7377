// GELU (tanh approximation) kernels. One thread per element: the op is
// memory-bound, so the launcher only has to keep loads coalesced.
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/gelu.cuh"

namespace kernels::cuda {

// ----------------------------------------------------------------------------
// kernels

__device__ constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)

__global__ void gelu_forward_kernel(float* out, const float* inp, int N) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) {
    float x = inp[i];
    float cube = 0.044715f * x * x * x;
    out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + cube)));
  }
}

__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout, int N) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) {
    float x = inp[i];
    float cube = 0.044715f * x * x * x;
    float tanh_out = tanhf(kGeluScale * (x + cube));
    float sech2 = 1.0f - tanh_out * tanh_out;
    float local_grad = 0.5f * (1.0f + tanh_out) +
                       x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[i] += local_grad * dout[i];
  }
}

// ----------------------------------------------------------------------------
// launchers

std::string gelu_forward(float* out, const float* inp, int N, cudaStream_t stream) {
  const int block = 256;
  gelu_forward_kernel<<<CEIL_DIV(N, block), block, 0, stream>>>(out, inp, N);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string gelu_backward(float* dinp, const float* inp, const float* dout, int N,
                          cudaStream_t stream) {
  const int block = 256;
  gelu_backward_kernel<<<CEIL_DIV(N, block), block, 0, stream>>>(dinp, inp, dout, N);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

}  // namespace kernels::cuda
