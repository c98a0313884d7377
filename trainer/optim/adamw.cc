// AdamW over flat ranges and global-norm clipping (see adamw.h).
#include "trainer/optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "trainer/kernels/cpu/adamw_simd.h"

namespace trainer {

std::vector<std::pair<size_t, size_t>> WeightDecayRanges(const GptParamLayout& layout, bool decay,
                                                         size_t begin, size_t end) {
  // e.g. ln2 w/b of layer l and nothing else form a no-decay range of 2C floats.
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const ParamTensorInfo& t : layout.tensors()) {
    if (t.weight_decay != decay) continue;
    const size_t b = std::max(t.offset, begin), e = std::min(t.offset + t.numel, end);
    if (b >= e) continue;
    if (!ranges.empty() && ranges.back().second == b) {
      ranges.back().second = e;
    } else {
      ranges.emplace_back(b, e);
    }
  }
  return ranges;
}

AdamW::AdamW(const GptParamLayout& layout, const AdamWConfig& config, size_t begin, size_t end)
    : config_(config) {
  end_ = std::min(end, layout.num_params());
  begin_ = std::min(begin, end_);
  m_.assign(end_ - begin_, 0.0f);
  v_.assign(end_ - begin_, 0.0f);
  decay_ranges_ = WeightDecayRanges(layout, true, begin_, end_);
  no_decay_ranges_ = WeightDecayRanges(layout, false, begin_, end_);
}

void AdamW::Step(float* params, const float* grads, float lr, float grad_scale) {
  StepShard(params + begin_, grads + begin_, lr, grad_scale);
}

void AdamW::StepShard(float* params, const float* grads, float lr, float grad_scale) {
  ++step_;
  for (bool decay : {true, false}) {
    const float wd = decay ? config_.weight_decay : 0.0f;
    for (const auto& [begin, end] : ranges(decay)) {
      kernels::cpu::adamw_update_simd(params + (begin - begin_), grads + (begin - begin_),
                                      m_.data() + (begin - begin_),
                                      v_.data() + (begin - begin_), end - begin, lr,
                                      config_.beta1, config_.beta2, config_.eps, wd, step_,
                                      grad_scale);
    }
  }
}

double SumOfSquares(const float* grads, size_t n) {
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
  return total;
}

double ShardSumOfSquares(const GptParamLayout& layout, const float* grads, size_t begin,
                         size_t end, bool count_replicated) {
  double sq = 0.0;
  for (const ParamTensorInfo& t : layout.tensors()) {
    if (t.split == TpSplit::kReplicated && !count_replicated) continue;
    if (t.pipeline_copy) continue;  // counted on the first stage
    const size_t b = std::max(begin, t.offset), e = std::min(end, t.offset + t.numel);
    if (b < e) sq += SumOfSquares(grads + (b - begin), e - b);
  }
  return sq;
}

void AdamW::LoadState(const float* m, const float* v, int64_t step) {
  std::copy(m, m + m_.size(), m_.begin());
  std::copy(v, v + v_.size(), v_.begin());
  step_ = step;
}

double GradNorm(const float* grads, size_t n) { return std::sqrt(SumOfSquares(grads, n)); }

void ScaleInPlace(float* x, size_t n, float coef) {
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < static_cast<long long>(n); ++i) x[i] *= coef;
}

double ClipCoefficient(double norm, double max_norm) {
  if (max_norm <= 0.0) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? coef : 1.0;
}

double ClipGradNorm(float* grads, size_t n, double max_norm) {
  const double norm = GradNorm(grads, n);
  const double coef = ClipCoefficient(norm, max_norm);
  if (coef < 1.0) ScaleInPlace(grads, n, static_cast<float>(coef));
  return norm;
}

}  // namespace trainer
