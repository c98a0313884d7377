// Linear layers through cuBLASLt, with the epilogues that pay: bias, bias + GELU
// (keeping the pre-GELU input for backward) and, in backward, the GELU derivative.
// CPU twin: kernels/cpu/matmul.h (weight (OC, C), out-features major).
// Weight gradients are accumulated in fp32 (cuBLASLt with floatX inputs, fp32 C/D, beta 1),
// so gradient accumulation and the data-parallel reduction work on fp32 as Megatron's
// main_grad does. fp32 compute uses plain fp32 (no TF32) so it checks against the CPU.
#pragma once

#include <cublasLt.h>

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// A cuBLASLt handle and its workspace; one per device, used on one stream at a time.
class MatmulContext {
 public:
  // workspace_bytes of device memory (32 MiB suits Hopper).
  MatmulContext() = default;
  coord::Status Init(size_t workspace_bytes = 32u << 20);
  ~MatmulContext();
  MatmulContext(const MatmulContext&) = delete;  // owns the handle and the workspace
  MatmulContext& operator=(const MatmulContext&) = delete;
  cublasLtHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }

 private:
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

enum class MatmulEpilogue {
  kNone,      // out = inp W^T
  kBias,      // out = inp W^T + bias
  kBiasGelu,  // pre_gelu = inp W^T + bias; out = gelu(pre_gelu) (tanh approximation)
};

// out (N,OC) per the epilogue; inp (N,C), weight (OC,C), bias (OC,) in floatX; pre_gelu
// (N,OC) only for kBiasGelu.
template <typename floatX>
coord::Status matmul_forward(const MatmulContext& ctx, floatX* out, floatX* pre_gelu,
                             const floatX* inp, const floatX* weight, const floatX* bias, int N,
                             int C, int OC, MatmulEpilogue epilogue, cudaStream_t stream);

// Backward of out = act(inp W^T + b):
//   dinp (N,C) = dout @ weight, times gelu'(pre_gelu) elementwise when pre_gelu is not
//   null (the input of this layer was gelu(pre_gelu): fuses the GELU backward of the
//   layer below); dinp is OVERWRITTEN in floatX.
//   dweight (OC,C) fp32 += dout^T @ inp;  dbias (OC,) fp32 += column sums of dout
//   (skipped when null). Deterministic.
// scratch: matmul_backward_scratch_floats(N, OC) floats for the bias partial sums.
size_t matmul_backward_scratch_floats(int N, int OC);
template <typename floatX>
coord::Status matmul_backward(const MatmulContext& ctx, floatX* dinp, float* dweight, float* dbias,
                              const floatX* dout, const floatX* inp, const floatX* weight,
                              const floatX* pre_gelu, int N, int C, int OC, float* scratch,
                              cudaStream_t stream);

}  // namespace kernels::cuda
