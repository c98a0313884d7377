// Linear layer forward/backward (see matmul.h). All products go through BLAS sgemm
// (row-major). Threading: the rows of each product are split across OpenMP threads
// and every piece is a single-threaded sgemm, so OpenMP is the only thread pool
// (OpenBLAS's own pthreads spinning next to OpenMP's oversubscribes the cores, which
// cost 5-20x on a shared 2-core machine). The split is fixed for a fixed thread count
// and every output element is computed by one call, so results are deterministic.
#include "trainer/kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

namespace {

// C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C, row-major, rows of C split
// into one block per thread (multiples of 16 rows: whole sgemm register tiles).
void sgemm_rows(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  static const bool kBlasSingleThreaded = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)kBlasSingleThreaded;
  // Small products (< ~1 MFLOP) are not worth a fork/join; the split depends only on
  // the shape and the thread count.
  const bool small = 2LL * M * N * K < (1LL << 20);
  const int nthreads = small ? 1 : std::max(1, omp_get_max_threads());
  const int rows = (((M + nthreads - 1) / nthreads) + 15) / 16 * 16;
  const int nblocks = (M + rows - 1) / rows;
#pragma omp parallel for schedule(static) if (nblocks > 1)
  for (int blk = 0; blk < nblocks; ++blk) {
    const int m0 = blk * rows, m = std::min(rows, M - m0);
    // Row m0 of op(A): a row offset of A when not transposed, a column offset otherwise.
    const float* a = trans_a == CblasNoTrans ? A + static_cast<size_t>(m0) * lda : A + m0;
    cblas_sgemm(CblasRowMajor, trans_a, trans_b, m, N, K, 1.0f, a, lda, B, ldb, beta,
                C + static_cast<size_t>(m0) * ldc, ldc);
  }
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  // out (N,OC) = inp (N,C) @ weight^T (C,OC)
  sgemm_rows(CblasNoTrans, CblasTrans, N, OC, C, inp, C, weight, C, 0.0f, out, OC);
  if (bias == nullptr) return;
#pragma omp parallel for schedule(static) if (1LL * N * OC >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    float* row = out + static_cast<size_t>(n) * OC;
    for (int o = 0; o < OC; ++o) row[o] += bias[o];
  }
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  // dinp (N,C) += dout (N,OC) @ weight (OC,C)
  sgemm_rows(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, weight, C, 1.0f, dinp, C);
  // dweight (OC,C) += dout^T (OC,N) @ inp (N,C)
  sgemm_rows(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.0f, dweight, C);
  if (dbias != nullptr) column_sum_accumulate(dbias, dout, N, OC);
}

void bias_add_forward(float* out, const float* bias, int N, int OC) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* row = out + static_cast<size_t>(n) * OC;
    for (int o = 0; o < OC; ++o) row[o] += bias[o];
  }
}

}  // namespace kernels::cpu
