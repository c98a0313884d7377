// Linear layer y = x W^T + b for a few rows (a generation step), fp32 through BLAS.
// matmul_forward (matmul.h) splits the ROWS of x across threads, so one row runs on one
// thread; this splits the output features instead, so a decode step's projections and
// LM head use every core. Same contract and layout as matmul_forward.
#pragma once

namespace kernels::cpu {

// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC,); bias may be null. Each output
// column block is one single-threaded sgemm, the split fixed by OC and the thread
// count: deterministic.
void matvec_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);

}  // namespace kernels::cpu
