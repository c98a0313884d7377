// LayerNorm forward/backward (see layernorm.h). Math as in llm.c's train_gpt2.c:
// y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps), biased variance.
#include "trainer/kernels/cpu/layernorm.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (1LL * N * C >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;  // (C,)
    float* y = out + static_cast<size_t>(n) * C;        // (C,)
    float m = 0.0f;
    for (int i = 0; i < C; ++i) m += x[i];
    m /= C;
    float v = 0.0f;
    for (int i = 0; i < C; ++i) {
      float d = x[i] - m;
      v += d * d;
    }
    v /= C;
    float s = 1.0f / std::sqrt(v + eps);
    for (int i = 0; i < C; ++i) y[i] = (s * (x[i] - m)) * weight[i] + bias[i];
    mean[n] = m;
    rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  const int nchunks = reduce_num_chunks(N);
  // (nchunks, 2, C): per-chunk partial dweight then dbias, reduced in chunk order below.
  std::vector<float> partial(static_cast<size_t>(nchunks) * 2 * C, 0.0f);
#pragma omp parallel for schedule(static) if (1LL * N * C >= kParallelMinWork)
  for (int chunk = 0; chunk < nchunks; ++chunk) {
    float* pdw = partial.data() + static_cast<size_t>(chunk) * 2 * C;
    float* pdb = pdw + C;
    int n1 = reduce_chunk_begin(N, nchunks, chunk + 1);
    for (int n = reduce_chunk_begin(N, nchunks, chunk); n < n1; ++n) {
      const float* dy = dout + static_cast<size_t>(n) * C;
      const float* x = inp + static_cast<size_t>(n) * C;
      float* dx = dinp + static_cast<size_t>(n) * C;
      const float m = mean[n], s = rstd[n];
      // Two reductions over the row: mean(w*dy) and mean(w*dy*xhat).
      float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
      for (int i = 0; i < C; ++i) {
        float xhat = (x[i] - m) * s;
        float dnorm = weight[i] * dy[i];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * xhat;
      }
      dnorm_mean /= C;
      dnorm_norm_mean /= C;
      for (int i = 0; i < C; ++i) {
        float xhat = (x[i] - m) * s;
        float dnorm = weight[i] * dy[i];
        pdb[i] += dy[i];
        pdw[i] += xhat * dy[i];
        dx[i] += (dnorm - dnorm_mean - xhat * dnorm_norm_mean) * s;
      }
    }
  }
#pragma omp parallel for schedule(static) if (1LL * nchunks * C >= kParallelMinWork)
  for (int i = 0; i < C; ++i) {
    float dw = 0.0f, db = 0.0f;
    for (int chunk = 0; chunk < nchunks; ++chunk) {
      dw += partial[static_cast<size_t>(chunk) * 2 * C + i];
      db += partial[static_cast<size_t>(chunk) * 2 * C + C + i];
    }
    dweight[i] += dw;
    dbias[i] += db;
  }
}

}  // namespace kernels::cpu
