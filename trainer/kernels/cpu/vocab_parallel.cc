// Vocab-parallel embedding and cross-entropy, local steps (see vocab_parallel.h). The
// loops mirror encoder.cc and softmax_cross_entropy.cc so one rank gives their bits.
#include "trainer/kernels/cpu/vocab_parallel.h"

#include <cmath>
#include <cstddef>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

int vocab_shard_valid(int V, int vocab_begin, int Vl) {
  const int valid = V - vocab_begin;
  return valid < 0 ? 0 : (valid > Vl ? Vl : valid);
}

void vocab_parallel_embedding_forward(float* out, const int* inp, const float* wte_shard,
                                      int vocab_begin, int Vl, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static) if (1LL * B * T * C >= kParallelMinWork)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      float* out_bt = out + (static_cast<size_t>(b) * T + t) * C;  // (C,)
      const int local = inp[b * T + t] - vocab_begin;
      if (local < 0 || local >= Vl) {
        for (int i = 0; i < C; ++i) out_bt[i] = 0.0f;
        continue;
      }
      const float* row = wte_shard + static_cast<size_t>(local) * C;
      for (int i = 0; i < C; ++i) out_bt[i] = row[i];
    }
  }
}

void position_embedding_add(float* out, const float* wpe, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static) if (1LL * B * T * C >= kParallelMinWork)
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      float* out_bt = out + (static_cast<size_t>(b) * T + t) * C;
      const float* wpe_t = wpe + static_cast<size_t>(t) * C;
      for (int i = 0; i < C; ++i) out_bt[i] = out_bt[i] + wpe_t[i];
    }
  }
}

void vocab_parallel_embedding_backward(float* dwte_shard, float* dwpe, const float* dout,
                                       const int* inp, int vocab_begin, int Vl, int B, int T,
                                       int C) {
  // As encoder_backward: threads own column blocks, (b, t) in order within each.
  constexpr int kColBlock = 16;
  const int nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (1LL * B * T * C >= kParallelMinWork)
  for (int blk = 0; blk < nblocks; ++blk) {
    const int c0 = blk * kColBlock, c1 = c0 + kColBlock < C ? c0 + kColBlock : C;
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        const float* dout_bt = dout + (static_cast<size_t>(b) * T + t) * C;
        const int local = inp[b * T + t] - vocab_begin;
        if (local >= 0 && local < Vl) {
          float* dwte_ix = dwte_shard + static_cast<size_t>(local) * C;
          for (int i = c0; i < c1; ++i) dwte_ix[i] += dout_bt[i];
        }
        if (dwpe == nullptr) continue;  // rotary positions
        float* dwpe_t = dwpe + static_cast<size_t>(t) * C;
        for (int i = c0; i < c1; ++i) dwpe_t[i] += dout_bt[i];
      }
    }
  }
}

void vocab_parallel_ce_max(float* row_max, const float* logits, int N, int Vl, int valid) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = logits + static_cast<size_t>(n) * Vl;
    float maxval = -INFINITY;
    for (int v = 0; v < valid; ++v) maxval = row[v] > maxval ? row[v] : maxval;
    row_max[n] = maxval;
  }
}

void vocab_parallel_ce_exp(double* sum_exp, float* target_logit, float* logits,
                           const float* row_max, const int* targets, int N, int Vl, int valid,
                           int vocab_begin) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* row = logits + static_cast<size_t>(n) * Vl;
    const int local = targets[n] - vocab_begin;
    target_logit[n] = local >= 0 && local < valid ? row[local] : 0.0f;
    const float maxval = row_max[n];
    double sum = 0.0;
    for (int v = 0; v < valid; ++v) {
      const float e = std::exp(row[v] - maxval);
      row[v] = e;
      sum += e;
    }
    for (int v = valid; v < Vl; ++v) row[v] = 0.0f;
    sum_exp[n] = sum;
  }
}

void vocab_parallel_ce_finish(float* losses, float* logits, const double* sum_exp,
                              const float* target_logit, const float* row_max, int N, int Vl,
                              int valid) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* row = logits + static_cast<size_t>(n) * Vl;
    const float inv_sum = static_cast<float>(1.0 / sum_exp[n]);
    for (int v = 0; v < valid; ++v) row[v] *= inv_sum;
    losses[n] = static_cast<float>(std::log(sum_exp[n]) -
                                   (static_cast<double>(target_logit[n]) - row_max[n]));
  }
}

void vocab_parallel_ce_backward(float* probs, const int* targets, int N, int Vl, int valid,
                                int vocab_begin, float dloss) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* row = probs + static_cast<size_t>(n) * Vl;
    const int local = targets[n] - vocab_begin;
    for (int v = 0; v < valid; ++v) row[v] = (row[v] - (v == local ? 1.0f : 0.0f)) * dloss;
    for (int v = valid; v < Vl; ++v) row[v] = 0.0f;
  }
}

}  // namespace kernels::cpu
