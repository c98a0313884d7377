// Dropout forward/backward (see dropout.h). Blocks of 4 elements share one Philox
// call; the loop is parallel and has no reductions, so it is deterministic.
#include "trainer/kernels/cpu/dropout.h"

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

namespace {

void apply_mask(float* out, const float* inp, size_t N, float p, const trainer::RngStream& rng) {
  const float scale = 1.0f / (1.0f - p);
  const long long nblocks = static_cast<long long>((N + 3) / 4);
#pragma omp parallel for schedule(static) if (nblocks * 4 >= kParallelMinWork)
  for (long long blk = 0; blk < nblocks; ++blk) {
    trainer::Philox4x32 r = rng.block(static_cast<uint64_t>(blk));
    for (int j = 0; j < 4; ++j) {
      size_t i = static_cast<size_t>(blk) * 4 + j;
      if (i >= N) break;
      float u = static_cast<float>(r.v[j] >> 8) * 0x1.0p-24f;  // == rng.uniform(i)
      out[i] = u >= p ? inp[i] * scale : 0.0f;
    }
  }
}

}  // namespace

void dropout_forward(float* out, const float* inp, size_t N, float p,
                     const trainer::RngStream& rng) {
  apply_mask(out, inp, N, p, rng);
}

void dropout_backward(float* dinp, const float* dout, size_t N, float p,
                      const trainer::RngStream& rng) {
  apply_mask(dinp, dout, N, p, rng);
}

}  // namespace kernels::cpu
