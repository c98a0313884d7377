// Dropout forward/backward (see dropout.h). Blocks of 4 elements share one
// Philox call; the loop is parallel and has no reductions, so it is
// deterministic.
#include "trainer/kernels/cpu/dropout.h"

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

namespace {

void apply_mask(float* out, const float* inp, size_t N, float p, const trainer::RngStream& rng,
                size_t row_elems) {
  const float scale = 1.0f / (1.0f - p);
  if (row_elems == 0 || row_elems > N) row_elems = N;
  const size_t rows = N == 0 ? 0 : (N + row_elems - 1) / row_elems;
  const size_t blocks_per_row = (row_elems + 3) / 4;
  const long long nblocks = static_cast<long long>(rows * blocks_per_row);
#pragma omp parallel for schedule(static) if (nblocks * 4 >= kParallelMinWork)
  for (long long g = 0; g < nblocks; ++g) {
    const size_t row = static_cast<size_t>(g) / blocks_per_row;
    const size_t blk = static_cast<size_t>(g) % blocks_per_row;
    const trainer::Philox4x32 r =
        (rows == 1 ? rng : trainer::SampleStream(rng, static_cast<int64_t>(row))).block(blk);
    for (size_t j = 0; j < 4; ++j) {
      const size_t k = blk * 4 + j;  // index within the row
      const size_t i = row * row_elems + k;
      if (k >= row_elems || i >= N) break;
      float u = static_cast<float>(r.v[j] >> 8) * 0x1.0p-24f;  // == uniform(k) of the row's stream
      out[i] = u >= p ? inp[i] * scale : 0.0f;
    }
  }
}

}  // namespace

void dropout_forward(float* out, const float* inp, size_t N, float p, const trainer::RngStream& rng,
                     size_t row_elems) {
  apply_mask(out, inp, N, p, rng, row_elems);
}

void dropout_backward(float* dinp, const float* dout, size_t N, float p,
                      const trainer::RngStream& rng, size_t row_elems) {
  apply_mask(dinp, dout, N, p, rng, row_elems);
}

}  // namespace kernels::cpu
