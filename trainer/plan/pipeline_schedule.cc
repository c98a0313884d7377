// Megatron's schedule arithmetic (see pipeline_schedule.h).
#include "trainer/plan/pipeline_schedule.h"

#include <algorithm>

#include "trainer/train/pipeline_schedule.h"

namespace gpt_rank::plan {

// The schedule's own count (trainer/train/pipeline_schedule.h), so the plan and the
// runtime cannot disagree.
int64_t WarmupMicroBatches(int pp, int vpp, int64_t m, int pipeline_rank) {
  train::PipelineShape shape;
  shape.pp = std::max(1, pp);
  shape.vpp = std::max(1, vpp);
  shape.num_micro = std::max<int64_t>(1, m);
  shape.stage = std::clamp(pipeline_rank, 0, shape.pp - 1);
  return train::WarmupMicroBatches(shape, /*forward_only=*/false);
}

int64_t InFlightMicroBatches(int pp, int vpp, int64_t m, int pipeline_rank) {
  const int64_t total = std::max<int64_t>(1, m) * std::max(1, vpp);
  return std::min(WarmupMicroBatches(pp, vpp, m, pipeline_rank) + 1, total);
}

double BubbleFraction(int pp, int vpp, int64_t m) {
  if (pp <= 1) return 0.0;
  return (pp - 1.0) / (static_cast<double>(std::max<int64_t>(1, m)) * std::max(1, vpp));
}

}  // namespace gpt_rank::plan
