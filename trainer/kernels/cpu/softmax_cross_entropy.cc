// Softmax + cross-entropy forward/backward (see softmax_cross_entropy.h). Row-parallel;
// the exp sum is accumulated in double so the loss matches a float64 reference closely.
#include "trainer/kernels/cpu/softmax_cross_entropy.h"

#include <cmath>
#include <cstddef>

namespace kernels::cpu {

void softmax_cross_entropy_forward(float* losses, float* logits, const int* targets, int N, int V,
                                   int Vp) {
#pragma omp parallel for schedule(static) if (N > 1)  // rows: one row is one task
  for (int n = 0; n < N; ++n) {
    float* row = logits + static_cast<size_t>(n) * Vp;  // (Vp,)
    float maxval = -INFINITY;
    for (int v = 0; v < V; ++v) maxval = row[v] > maxval ? row[v] : maxval;
    // log-sum-exp in double: loss = log(sum exp(x - max)) - (x[target] - max).
    double sum = 0.0;
    const float target_logit = row[targets[n]];
    for (int v = 0; v < V; ++v) {
      float e = std::exp(row[v] - maxval);
      row[v] = e;
      sum += e;
    }
    const float inv_sum = static_cast<float>(1.0 / sum);
    for (int v = 0; v < V; ++v) row[v] *= inv_sum;
    for (int v = V; v < Vp; ++v) row[v] = 0.0f;
    losses[n] = static_cast<float>(std::log(sum) - (static_cast<double>(target_logit) - maxval));
  }
}

void softmax_cross_entropy_backward(float* probs, const int* targets, int N, int V, int Vp,
                                    float dloss) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* row = probs + static_cast<size_t>(n) * Vp;  // (Vp,) probs in, dlogits out
    const int ix = targets[n];
    for (int v = 0; v < V; ++v) row[v] = (row[v] - (v == ix ? 1.0f : 0.0f)) * dloss;
    for (int v = V; v < Vp; ++v) row[v] = 0.0f;
  }
}

}  // namespace kernels::cpu
