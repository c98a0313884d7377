// Deterministic column sums (see reduce.h): fixed row chunks, fixed reduction order.
#include "trainer/kernels/cpu/reduce.h"

#include <vector>

namespace kernels::cpu {

void column_sum_accumulate(float* out, const float* inp, int rows, int cols) {
  const int nchunks = reduce_num_chunks(rows);
  std::vector<float> partial(static_cast<size_t>(nchunks) * cols, 0.0f);  // (nchunks, cols)
#pragma omp parallel for schedule(static) if (1LL * rows * cols >= kParallelMinWork)
  for (int chunk = 0; chunk < nchunks; ++chunk) {
    float* acc = partial.data() + static_cast<size_t>(chunk) * cols;
    int r1 = reduce_chunk_begin(rows, nchunks, chunk + 1);
    for (int r = reduce_chunk_begin(rows, nchunks, chunk); r < r1; ++r) {
      const float* row = inp + static_cast<size_t>(r) * cols;
      for (int j = 0; j < cols; ++j) acc[j] += row[j];
    }
  }
#pragma omp parallel for schedule(static) if (1LL * nchunks * cols >= kParallelMinWork)
  for (int j = 0; j < cols; ++j) {
    float sum = 0.0f;
    for (int chunk = 0; chunk < nchunks; ++chunk)
      sum += partial[static_cast<size_t>(chunk) * cols + j];
    out[j] += sum;
  }
}

}  // namespace kernels::cpu
