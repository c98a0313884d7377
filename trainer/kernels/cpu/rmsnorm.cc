// RMSNorm forward/backward (see rmsnorm.h). With xhat = x * rstd:
//   dx = rstd * (w dy - xhat * mean(w dy * xhat)),  dw += sum over rows of dy * xhat.
#include "trainer/kernels/cpu/rmsnorm.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                     float eps) {
#pragma omp parallel for schedule(static) if (1LL * N * C >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;  // (C,)
    float* y = out + static_cast<size_t>(n) * C;        // (C,)
    float ss = 0.0f;
    for (int i = 0; i < C; ++i) ss += x[i] * x[i];
    const float s = 1.0f / std::sqrt(ss / C + eps);
    for (int i = 0; i < C; ++i) y[i] = (x[i] * s) * weight[i];
    rstd[n] = s;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int N, int C) {
  const int nchunks = reduce_num_chunks(N);
  // (nchunks, C): per-chunk partial dweight, reduced in chunk order below.
  std::vector<float> partial(static_cast<size_t>(nchunks) * C, 0.0f);
#pragma omp parallel for schedule(static) if (1LL * N * C >= kParallelMinWork)
  for (int chunk = 0; chunk < nchunks; ++chunk) {
    float* pdw = partial.data() + static_cast<size_t>(chunk) * C;
    const int n1 = reduce_chunk_begin(N, nchunks, chunk + 1);
    for (int n = reduce_chunk_begin(N, nchunks, chunk); n < n1; ++n) {
      const float* dy = dout + static_cast<size_t>(n) * C;
      const float* x = inp + static_cast<size_t>(n) * C;
      float* dx = dinp + static_cast<size_t>(n) * C;
      const float s = rstd[n];
      float dnorm_norm_mean = 0.0f;  // mean(w dy * xhat)
      for (int i = 0; i < C; ++i) dnorm_norm_mean += weight[i] * dy[i] * (x[i] * s);
      dnorm_norm_mean /= C;
      for (int i = 0; i < C; ++i) {
        const float xhat = x[i] * s;
        pdw[i] += xhat * dy[i];
        dx[i] += (weight[i] * dy[i] - xhat * dnorm_norm_mean) * s;
      }
    }
  }
#pragma omp parallel for schedule(static) if (1LL * nchunks * C >= kParallelMinWork)
  for (int i = 0; i < C; ++i) {
    float dw = 0.0f;
    for (int chunk = 0; chunk < nchunks; ++chunk) dw += partial[static_cast<size_t>(chunk) * C + i];
    dweight[i] += dw;
  }
}

}  // namespace kernels::cpu
