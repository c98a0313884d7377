// Residual add forward/backward (see residual.h).
#include "trainer/kernels/cpu/residual.h"

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void residual_forward(float* out, const float* a, const float* b, size_t N) {
  const long long n = static_cast<long long>(N);
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void residual_backward(float* da, float* db, const float* dout, size_t N) {
  const long long n = static_cast<long long>(N);
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (long long i = 0; i < n; ++i) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

}  // namespace kernels::cpu
