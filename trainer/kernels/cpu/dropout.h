// Dropout with a counter-based mask (Philox, trainer/core/philox.h): element i of a
// tensor is kept iff uniform(seed, stream, i) >= p, and kept values are scaled by
// 1/(1-p) (inverted dropout, as torch.nn.functional.dropout). The mask is never
// stored: backward and activation recomputation regenerate it from (seed, stream).
#pragma once

#include <cstddef>

#include "trainer/core/philox.h"

namespace kernels::cpu {

// Whether element i is kept (uniform(i) >= p).
inline bool dropout_keep(const trainer::RngStream& rng, size_t i, float p) {
  return rng.uniform(i) >= p;
}

// out (N,) = mask(inp) / (1-p); in place allowed (out == inp). p in [0, 1).
// With row_elems > 0 the tensor is (N / row_elems, row_elems) and row b draws from
// SampleStream(rng, b) at its own index (one stream per sample, philox.h);
// row_elems == 0 draws the whole tensor from rng.
void dropout_forward(float* out, const float* inp, size_t N, float p,
                     const trainer::RngStream& rng, size_t row_elems = 0);
// dinp (N,) = mask(dout) / (1-p) (overwrites; in place allowed).
void dropout_backward(float* dinp, const float* dout, size_t N, float p,
                      const trainer::RngStream& rng, size_t row_elems = 0);

}  // namespace kernels::cpu
