// Megatron's schedule arithmetic (see pipeline_schedule.h).
#include "trainer/plan/pipeline_schedule.h"

#include <algorithm>

namespace gpt_rank::plan {

int64_t WarmupMicroBatches(int pp, int vpp, int64_t m, int pipeline_rank) {
  pp = std::max(1, pp);
  vpp = std::max(1, vpp);
  m = std::max<int64_t>(1, m);
  const int64_t after = pp - std::clamp(pipeline_rank, 0, pp - 1) - 1;  // stages after this one
  if (vpp == 1) return std::min(after, m);
  const int64_t total = m * vpp;
  // schedules.py: with exactly pp micro-batches every forward runs before any backward.
  if (m == pp) return total;
  return std::min(after * 2 + static_cast<int64_t>(vpp - 1) * pp, total);
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
