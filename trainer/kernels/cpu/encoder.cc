// Token + position embedding forward/backward (see encoder.h).
#include "trainer/kernels/cpu/encoder.h"

#include <cstddef>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void encoder_forward(float* out, const int* inp, const float* wte, const float* wpe, int B, int T,
                     int C) {
#pragma omp parallel for collapse(2) schedule(static) if (1LL * B * T * C >= kParallelMinWork)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      float* out_bt = out + (static_cast<size_t>(b) * T + t) * C;           // (C,)
      const float* wte_ix = wte + static_cast<size_t>(inp[b * T + t]) * C;  // (C,)
      if (wpe == nullptr) {  // rotary positions: the token embedding only
        for (int i = 0; i < C; ++i) out_bt[i] = wte_ix[i];
        continue;
      }
      const float* wpe_t = wpe + static_cast<size_t>(t) * C;  // (C,)
      for (int i = 0; i < C; ++i) out_bt[i] = wte_ix[i] + wpe_t[i];
    }
  }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T,
                      int C) {
  // Two tokens may share an id, so rows of dwte cannot be split across threads;
  // columns can. Each thread owns a block of columns for all (b,t), in (b,t) order.
  constexpr int kColBlock = 16;
  const int nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (1LL * B * T * C >= kParallelMinWork)
  for (int blk = 0; blk < nblocks; ++blk) {
    int c0 = blk * kColBlock;
    int c1 = c0 + kColBlock < C ? c0 + kColBlock : C;
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        const float* dout_bt = dout + (static_cast<size_t>(b) * T + t) * C;
        float* dwte_ix = dwte + static_cast<size_t>(inp[b * T + t]) * C;
        if (dwpe == nullptr) {
          for (int i = c0; i < c1; ++i) dwte_ix[i] += dout_bt[i];
          continue;
        }
        float* dwpe_t = dwpe + static_cast<size_t>(t) * C;
        for (int i = c0; i < c1; ++i) {
          dwte_ix[i] += dout_bt[i];
          dwpe_t[i] += dout_bt[i];
        }
      }
    }
  }
}

}  // namespace kernels::cpu
