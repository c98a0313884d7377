// Column-split linear layer for few rows (see matvec.h). OpenBLAS is kept
// single-threaded (as in matmul.cc): OpenMP is the only thread pool.
#include "trainer/kernels/cpu/matvec.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace kernels::cpu {

void matvec_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  static const bool kBlasSingleThreaded = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)kBlasSingleThreaded;
  // Below ~1 MFLOP a fork/join costs more than it saves (matmul.cc's threshold).
  const bool small = 2LL * N * OC * C < (1LL << 20);
  const int nthreads = small ? 1 : std::max(1, omp_get_max_threads());
  const int cols = (((OC + nthreads - 1) / nthreads) + 15) / 16 * 16;  // whole 16-wide tiles
  const int nblocks = (OC + cols - 1) / cols;
#pragma omp parallel for schedule(static) if (nblocks > 1)
  for (int blk = 0; blk < nblocks; ++blk) {
    const int o0 = blk * cols, m = std::min(cols, OC - o0);
    // out[:, o0:o0+m] = inp (N,C) @ weight[o0:o0+m]^T (C,m)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, m, C, 1.0f, inp, C,
                weight + static_cast<size_t>(o0) * C, C, 0.0f, out + o0, OC);
    if (bias == nullptr) continue;
    for (int n = 0; n < N; ++n) {
      float* row = out + static_cast<size_t>(n) * OC + o0;
      for (int o = 0; o < m; ++o) row[o] += bias[o0 + o];
    }
  }
}

}  // namespace kernels::cpu
