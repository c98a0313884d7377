// Megatron AnnealingLR (see lr_schedule.h). GetLr is a line-by-line transcription of
// get_lr(), in double as Python computes it.
#include "trainer/optim/lr_schedule.h"

#include <cmath>

namespace trainer {

coord::StatusOr<LrDecayStyle> ParseLrDecayStyle(const std::string& name) {
  if (name == "constant") return LrDecayStyle::kConstant;
  if (name == "linear") return LrDecayStyle::kLinear;
  if (name == "cosine") return LrDecayStyle::kCosine;
  return coord::InvalidArgument(
      "training.lr_decay_style: expected constant, linear or cosine, "
      "got \"" +
      name + "\"");
}

coord::StatusOr<LrSchedule> LrSchedule::Create(const LrScheduleConfig& config) {
  if (!(config.lr >= 0.0) || !(config.min_lr >= 0.0) || config.min_lr > config.lr) {
    return coord::InvalidArgument(
        "training: need 0 <= min_lr <= lr, got lr=" + std::to_string(config.lr) +
        " min_lr=" + std::to_string(config.min_lr));
  }
  if (config.global_batch_size <= 0) {
    return coord::InvalidArgument("training.global_batch_size: expected positive integer");
  }
  const int64_t decay_iters =
      config.lr_decay_iters >= 0 ? config.lr_decay_iters : config.train_iters;
  if (decay_iters <= 0) {
    return coord::InvalidArgument(
        "training.lr_decay_iters (or train_iters): expected positive "
        "integer, got " +
        std::to_string(decay_iters));
  }
  LrSchedule s;
  s.config_ = config;
  // megatron/training.py get_learning_rate_scheduler (iteration-based branch).
  s.decay_steps_ = static_cast<double>(decay_iters) * config.global_batch_size;
  if (config.lr_warmup_fraction >= 0.0) {
    if (config.lr_warmup_fraction > 1.0) {
      return coord::InvalidArgument("training.lr_warmup_fraction: expected [0, 1]");
    }
    s.warmup_steps_ = config.lr_warmup_fraction * s.decay_steps_;
  } else {
    if (config.lr_warmup_iters < 0) {
      return coord::InvalidArgument("training.lr_warmup_iters: expected >= 0");
    }
    s.warmup_steps_ = static_cast<double>(config.lr_warmup_iters) * config.global_batch_size;
  }
  if (s.config_.decay_style != LrDecayStyle::kConstant && s.warmup_steps_ >= s.decay_steps_) {
    // Megatron asserts decay_ratio <= 1 at run time; refuse up front instead.
    return coord::InvalidArgument("training: warmup (" + std::to_string(s.warmup_steps_) +
                                  " samples) must be shorter than lr_decay_iters (" +
                                  std::to_string(s.decay_steps_) + " samples)");
  }
  return s;
}

double LrSchedule::GetLr(double num_steps) const {
  const double max_lr = config_.lr, min_lr = config_.min_lr;
  // Use linear warmup for the initial part.
  if (warmup_steps_ > 0 && num_steps <= warmup_steps_) {
    return max_lr * num_steps / warmup_steps_;
  }
  if (config_.decay_style == LrDecayStyle::kConstant) return max_lr;
  // For any steps larger than decay_steps, use min_lr.
  if (num_steps > decay_steps_) return min_lr;
  const double decay_ratio = (num_steps - warmup_steps_) / (decay_steps_ - warmup_steps_);
  const double delta_lr = max_lr - min_lr;
  double coeff;
  if (config_.decay_style == LrDecayStyle::kLinear) {
    coeff = 1.0 - decay_ratio;
  } else {
    coeff = 0.5 * (std::cos(M_PI * decay_ratio) + 1.0);
  }
  return min_lr + coeff * delta_lr;
}

double LrSchedule::LrForIteration(int64_t k) const {
  return GetLr(static_cast<double>(k - 1) * config_.global_batch_size);
}

double LrSchedule::LoggedLrForIteration(int64_t k) const {
  return GetLr(static_cast<double>(k) * config_.global_batch_size);
}

}  // namespace trainer
