// Residual connection out = a + b, fp32 CPU reference.
#pragma once

#include <cstddef>

namespace kernels::cpu {

// out, a, b are (N,); out may alias a or b.
void residual_forward(float* out, const float* a, const float* b, size_t N);
// da (N,) += dout, db (N,) += dout.
void residual_backward(float* da, float* db, const float* dout, size_t N);

}  // namespace kernels::cpu
