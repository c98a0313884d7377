// Megatron's learning-rate schedule, megatron/learning_rates.py AnnealingLR as in
// Megatron-LM v2 / Megatron-DeepSpeed: linear warmup, then constant, linear or cosine
// decay to min_lr, then min_lr. Megatron counts in SAMPLES: warmup_steps and
// decay_steps are iterations * global_batch_size, and after each successful
// iteration the scheduler does step(increment = global_batch_size).
//
// The off-by-one, settled from megatron/training.py (train_step, train):
//   * the scheduler is built with num_steps = 0 (its __init__ calls step(0));
//   * iteration k (1-based, the number Megatron logs) runs optimizer.step() with the lr
//     of num_steps = (k-1) * gbs, THEN calls lr_scheduler.step(gbs);
//   * training_log(...) reads optimizer.param_groups[0]['lr'] after that, so the lr
//     PRINTED on iteration k's line is get_lr(k * gbs): the lr iteration k+1 will use.
// With warmup > 0 the first iteration therefore trains with lr = 0 (Adam's moments
// still update). LrForIteration / LoggedLrForIteration encode exactly this.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace trainer {

enum class LrDecayStyle { kConstant, kLinear, kCosine };

coord::StatusOr<LrDecayStyle> ParseLrDecayStyle(const std::string& name);

// Megatron's arguments (training.lr, min_lr, lr_decay_style, lr_decay_iters,
// lr_warmup_iters / lr_warmup_fraction, train_iters, global_batch_size).
struct LrScheduleConfig {
  double lr = 1.5e-4;  // max lr
  double min_lr = 0.0;
  LrDecayStyle decay_style = LrDecayStyle::kLinear;
  int64_t train_iters = 0;
  int64_t lr_decay_iters = -1;  // -1: train_iters (Megatron's default)
  int64_t lr_warmup_iters = 0;
  double lr_warmup_fraction = -1.0;  // >= 0 overrides lr_warmup_iters
  int64_t global_batch_size = 1;
};

class LrSchedule {
 public:
  static coord::StatusOr<LrSchedule> Create(const LrScheduleConfig& config);

  // AnnealingLR.get_lr() with self.num_steps = num_steps (in samples).
  double GetLr(double num_steps) const;
  // The lr iteration k (1-based) trains with: GetLr((k-1) * gbs).
  double LrForIteration(int64_t k) const;
  // The lr Megatron prints on iteration k's log line: GetLr(k * gbs).
  double LoggedLrForIteration(int64_t k) const;

  double warmup_steps() const { return warmup_steps_; }  // samples
  double decay_steps() const { return decay_steps_; }    // samples

 private:
  LrScheduleConfig config_;
  double warmup_steps_ = 0.0;
  double decay_steps_ = 0.0;
};

}  // namespace trainer
