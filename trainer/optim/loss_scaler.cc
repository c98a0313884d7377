// DeepSpeed's DynamicLossScaler.update_scale, step for step (see loss_scaler.h).
#include "trainer/optim/loss_scaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trainer {

namespace {
constexpr double kScaleFactor = 2.0;  // DeepSpeed's scale_factor

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}
}  // namespace

LossScaler::LossScaler(const LossScalerConfig& config)
    : config_(config),
      scale_(config.dynamic ? std::ldexp(1.0, config.initial_scale_power) : config.static_scale),
      hysteresis_left_(config.hysteresis) {}

double LossScaler::ScaleAfterOverflow() const {
  if (!config_.dynamic) return scale_;
  if (config_.hysteresis == 1 || hysteresis_left_ == 1) {
    return std::max(scale_ / kScaleFactor, config_.min_scale);
  }
  return scale_;
}

std::string LossScaler::DescribeOverflow(int64_t iteration) const {
  std::string text = "overflow in the fp16 gradients: skipping iteration " +
                     std::to_string(iteration) + " (no update), loss scale " + Num(scale_);
  if (!config_.dynamic) return text + " (static)";
  const double next = ScaleAfterOverflow();
  if (next != scale_) return text + " -> " + Num(next);
  return text + " kept (hysteresis: " + std::to_string(hysteresis_left_ - 1) + " left)";
}

coord::Status LossScaler::Update(bool overflow) {
  if (!config_.dynamic) {
    ++iter_;
    if (overflow) last_overflow_iter_ = iter_ - 1;
    return coord::Status::Ok();
  }
  if (overflow) {
    if (config_.hysteresis == 1 || hysteresis_left_ == 1) {
      if (scale_ <= config_.min_scale) {
        return coord::Status(
            coord::StatusCode::kAborted,
            "the fp16 loss scale is already at min_loss_scale (" + Num(config_.min_scale) +
                ") and the gradients still overflow: the run diverged. Lower the learning "
                "rate, check the data, or train in bf16 (\"bf16\": {\"enabled\": true})");
      }
      scale_ = std::max(scale_ / kScaleFactor, config_.min_scale);
    } else {
      --hysteresis_left_;
    }
    last_overflow_iter_ = iter_;
  } else {
    if (config_.consecutive_hysteresis) hysteresis_left_ = config_.hysteresis;
    if ((iter_ - last_overflow_iter_) % config_.scale_window == 0) {
      if (!config_.consecutive_hysteresis) hysteresis_left_ = config_.hysteresis;
      scale_ *= kScaleFactor;
    }
  }
  ++iter_;
  return coord::Status::Ok();
}

void LossScaler::set_state(const State& s) {
  scale_ = s.scale;
  iter_ = s.iter;
  last_overflow_iter_ = s.last_overflow_iter;
  hysteresis_left_ = s.hysteresis_left;
}

}  // namespace trainer
