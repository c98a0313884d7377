// AdamW over flat ranges and global-norm clipping (see adamw.h).
#include "trainer/optim/adamw.h"

#include <cmath>

#include "trainer/kernels/cpu/adamw.h"

namespace trainer {

AdamW::AdamW(const GptParamLayout& layout, const AdamWConfig& config) : config_(config) {
  m_.assign(layout.num_params(), 0.0f);
  v_.assign(layout.num_params(), 0.0f);
  // Merge neighbouring tensors with the same decay flag into maximal flat ranges
  // (e.g. ln2 w/b of layer l and nothing else form a no-decay range of 2C floats).
  for (const ParamTensorInfo& t : layout.tensors()) {
    auto& ranges = t.weight_decay ? decay_ranges_ : no_decay_ranges_;
    if (!ranges.empty() && ranges.back().second == t.offset) {
      ranges.back().second = t.offset + t.numel;
    } else {
      ranges.emplace_back(t.offset, t.offset + t.numel);
    }
  }
}

void AdamW::Step(float* params, const float* grads, float lr) {
  ++step_;
  for (bool decay : {true, false}) {
    const float wd = decay ? config_.weight_decay : 0.0f;
    for (const auto& [begin, end] : ranges(decay)) {
      kernels::cpu::adamw_update(params + begin, grads + begin, m_.data() + begin,
                                 v_.data() + begin, end - begin, lr, config_.beta1, config_.beta2,
                                 config_.eps, wd, step_);
    }
  }
}

double GradNorm(const float* grads, size_t n) {
  // Fixed chunking (independent of the thread count), partials added in order.
  constexpr size_t kChunks = 64;
  double partial[kChunks];
#pragma omp parallel for schedule(static)
  for (long long c = 0; c < static_cast<long long>(kChunks); ++c) {
    size_t b = n * c / kChunks, e = n * (c + 1) / kChunks;
    double s = 0.0;
    for (size_t i = b; i < e; ++i) s += static_cast<double>(grads[i]) * grads[i];
    partial[c] = s;
  }
  double total = 0.0;
  for (size_t c = 0; c < kChunks; ++c) total += partial[c];
  return std::sqrt(total);
}

double ClipGradNorm(float* grads, size_t n, double max_norm) {
  const double norm = GradNorm(grads, n);
  if (max_norm <= 0.0) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const float c = static_cast<float>(coef);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < static_cast<long long>(n); ++i) grads[i] *= c;
  }
  return norm;
}

}  // namespace trainer
