// AdamW over the flat parameter buffer (torch.optim.AdamW semantics = Megatron's apex
// FusedAdam with adam_w_mode): weight decay decoupled and applied only to tensors the
// layout marks weight_decay (weights, embeddings), never to biases or LayerNorm
// (Megatron's _get_params_for_weight_decay_optimization). m and v share the params'
// flat layout, so ZeRO can later shard all three by the same ranges.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "trainer/model/gpt_params.h"

namespace trainer {

struct AdamWConfig {
  float beta1 = 0.9f;          // adam_beta1
  float beta2 = 0.999f;        // adam_beta2
  float eps = 1e-8f;           // adam_eps
  float weight_decay = 0.01f;  // weight_decay
};

// Maximal flat ranges [b, e) within [begin, end) whose tensors have weight decay on
// (decay) or off: neighbouring tensors with the same flag merge.
std::vector<std::pair<size_t, size_t>> WeightDecayRanges(const GptParamLayout& layout, bool decay,
                                                         size_t begin, size_t end);

class AdamW {
 public:
  // Owns m and v for the flat range [begin, end) only: the whole model by default, one
  // data-parallel rank's shard under ZeRO (stages 1 and 2 partition the optimizer).
  AdamW(const GptParamLayout& layout, const AdamWConfig& config, size_t begin = 0,
        size_t end = static_cast<size_t>(-1));

  // One update with learning rate lr of params[begin, end) from grads[begin, end) *
  // grad_scale (1/loss_scale times the clip coefficient: read with the gradient, so no
  // separate scaling pass; 1 leaves grads as they are). params, grads are the full
  // (num_params,) buffers. Runs kernels::cpu::adamw_update_simd (bitwise the reference
  // adamw_update on every ISA path) on the OpenMP team.
  void Step(float* params, const float* grads, float lr, float grad_scale = 1.0f);
  // The same update where params and grads hold only [begin, end) (end - begin,): a
  // ZeRO-3 partition. Step is StepShard(params + begin, grads + begin, ...).
  void StepShard(float* params, const float* grads, float lr, float grad_scale = 1.0f);

  int64_t step() const { return step_; }
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  float* m() { return m_.data(); }  // (end - begin,) first moment of [begin, end)
  float* v() { return v_.data(); }  // (end - begin,) second moment
  // Resuming: m and v of this optimizer's range (end - begin floats each) and the step.
  void LoadState(const float* m, const float* v, int64_t step);
  // Maximal flat ranges [begin, end) with weight decay on (true) or off (false),
  // clipped to this optimizer's range.
  const std::vector<std::pair<size_t, size_t>>& ranges(bool decay) const {
    return decay ? decay_ranges_ : no_decay_ranges_;
  }

 private:
  AdamWConfig config_;
  size_t begin_ = 0, end_ = 0;
  int64_t step_ = 0;
  std::vector<float> m_, v_;
  std::vector<std::pair<size_t, size_t>> decay_ranges_, no_decay_ranges_;
};

// torch.nn.utils.clip_grad_norm_ / Megatron clip_grad_norm_fp32 on the flat buffer:
// norm = ||grads||_2 (accumulated in double, fixed-chunk order: deterministic);
// if max_norm > 0 and coef = max_norm / (norm + 1e-6) < 1, grads *= coef.
// Returns the norm before clipping.
double ClipGradNorm(float* grads, size_t n, double max_norm);
// ||grads||_2 without clipping.
double GradNorm(const float* grads, size_t n);
// sum of grads[i]^2 in double, fixed-chunk order (deterministic for any thread count).
double SumOfSquares(const float* grads, size_t n);
// SumOfSquares of the flat range [begin, end) of `layout` (grads points at element
// begin), tensor by tensor, skipping the tensors tensor parallel replicates unless
// count_replicated: Megatron's clip_grad_norm counts them on tensor rank 0 only.
double ShardSumOfSquares(const GptParamLayout& layout, const float* grads, size_t begin,
                         size_t end, bool count_replicated);
// x[i] *= coef.
void ScaleInPlace(float* x, size_t n, float coef);
// Megatron's clip coefficient: max_norm / (norm + 1e-6), or 1 when that is >= 1 or
// clipping is off (max_norm <= 0).
double ClipCoefficient(double norm, double max_norm);

}  // namespace trainer
