// Where one training iteration's time goes on this rank, for its progress record
// (metrics.h StepTimings): the training loop marks the step's parts and reads this
// thread's blocked-in-communication totals (comm_wait.h) at each mark. Runs on the
// training thread only.
#pragma once

#include <algorithm>

#include "trainer/dist/comm_wait.h"
#include "trainer/train/metrics.h"

namespace gpt_rank::train {

class StepTimer {
 public:
  void BeginStep() {
    start_ = dist::ThisThreadCommWait();
    after_fb_ = start_;
    data_ms_ = fb_ms_ = optimizer_ms_ = 0.0;
  }
  void AddDataMs(double ms) { data_ms_ += ms; }
  void EndForwardBackward(double fb_ms) {
    fb_ms_ = fb_ms;
    after_fb_ = dist::ThisThreadCommWait();
  }
  void SetOptimizerMs(double ms) { optimizer_ms_ = ms; }

  // The step so far (call at its end: the wait covers every collective since BeginStep).
  StepTimings Finish() const {
    const dist::CommWait now = dist::ThisThreadCommWait();
    const auto ms = [](int64_t ns) { return static_cast<double>(ns) * 1e-6; };
    const auto group = [&](dist::CommGroup g) {
      const int i = static_cast<int>(g);
      return ms(now.ns[i] - start_.ns[i]);
    };
    StepTimings t;
    t.wait_ms = ms(now.Total() - start_.Total());
    t.wait_tp_ms = group(dist::CommGroup::kTensor);
    t.wait_dp_ms = group(dist::CommGroup::kData);
    t.wait_pp_ms = group(dist::CommGroup::kPipeline);
    t.data_ms = data_ms_;
    t.optimizer_ms = optimizer_ms_;
    t.compute_ms = std::max(0.0, fb_ms_ - data_ms_ - ms(after_fb_.Total() - start_.Total()));
    return t;
  }

 private:
  dist::CommWait start_, after_fb_;
  double data_ms_ = 0.0, fb_ms_ = 0.0, optimizer_ms_ = 0.0;
};

}  // namespace gpt_rank::train
