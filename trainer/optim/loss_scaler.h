// fp16 loss scaling with DeepSpeed's semantics (deepspeed/runtime/fp16/loss_scaler.py,
// configured by the "fp16" block of a DeepSpeed config):
//   loss_scale 0           dynamic scaling starting at 2^initial_scale_power;
//   loss_scale > 0         a static scale, never changed, overflowed steps still skipped;
//   loss_scale_window      after this many steps without overflow the scale doubles;
//   hysteresis             overflows tolerated before the scale halves (the counter is
//                          refilled at each doubling, or after every good step with
//                          consecutive_hysteresis);
//   min_loss_scale         the floor; an overflow at the floor ends the run, as
//                          DeepSpeed's "Current loss scale already at minimum".
// The trainer multiplies the loss by scale(), checks the reduced gradient (a non-finite
// norm is an overflow), skips the optimizer step on overflow, else divides the
// gradient by scale(); then calls Update. Plain data and arithmetic: no GPU needed.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace trainer {

struct LossScalerConfig {
  bool dynamic = true;        // loss_scale == 0
  double static_scale = 1.0;  // loss_scale when > 0
  int initial_scale_power = 16;
  int64_t scale_window = 1000;  // loss_scale_window
  int hysteresis = 2;
  bool consecutive_hysteresis = false;
  double min_scale = 1.0;  // min_loss_scale
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerConfig& config);

  double scale() const { return scale_; }
  // The outcome of one step; Aborted when an overflow happens at min_loss_scale
  // (dynamic) — the message says what to do.
  coord::Status Update(bool overflow);
  // Log text for a skipped step: "overflow: skipping iteration 12, loss scale 65536 ->
  // 32768" (or "-> 65536 (hysteresis 1 left)"); call before Update.
  std::string DescribeOverflow(int64_t iteration) const;

  // State kept in checkpoints so a resumed fp16 run continues with the same scale.
  struct State {
    double scale = 0;
    int64_t iter = 0;  // updates so far
    int64_t last_overflow_iter = -1;
    int hysteresis_left = 0;
  };
  State state() const { return {scale_, iter_, last_overflow_iter_, hysteresis_left_}; }
  void set_state(const State& s);

 private:
  // The scale after an overflow at the current state (== scale_ while hysteresis lasts).
  double ScaleAfterOverflow() const;

  LossScalerConfig config_;
  double scale_;
  int64_t iter_ = 0;
  int64_t last_overflow_iter_ = -1;
  int hysteresis_left_;
};

}  // namespace trainer
