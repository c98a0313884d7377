// Linear layer y = x W^T + b (torch.nn.Linear / Megatron ColumnParallelLinear layout:
// weight is (OC, C), out-features major), fp32 through cblas_sgemm.
#pragma once

namespace kernels::cpu {

// out (N,OC) = inp (N,C) @ weight(OC,C)^T + bias (OC,); bias may be null. N = B*T.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);
// out (N,OC) += bias (OC,): the bias of a row-parallel linear, added after its
// tensor-parallel all-reduce (Megatron's RowParallelLinear).
void bias_add_forward(float* out, const float* bias, int N, int OC);
// Accumulates: dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp;
// dbias (OC,) += column sums of dout (skipped when null). dout (N,OC).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);

}  // namespace kernels::cpu
