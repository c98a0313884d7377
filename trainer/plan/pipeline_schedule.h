// Megatron's pipeline schedules as arithmetic, for `gpt-rank plan`: how many
// micro-batches a stage keeps activations for at its peak, and the bubble. Pure
// functions of pp (stages), vpp (model chunks per stage; 1 = plain 1F1B) and m (the
// micro-batches of one iteration). The schedules themselves are
// megatron/core/pipeline_parallel/schedules.py (forward_backward_pipelining_without_
// interleaving / _with_interleaving); sources and derivations in docs/plan.md.
#pragma once

#include <cstdint>

namespace gpt_rank::plan {

// Forward passes of model-chunk micro-batches stage `pipeline_rank` (0 = first) runs
// before its first backward. 1F1B: min(pp - rank - 1, m). Interleaved: all m * vpp when
// m == pp, else min(2 (pp - rank - 1) + (vpp - 1) pp, m vpp).
int64_t WarmupMicroBatches(int pp, int vpp, int64_t m, int pipeline_rank);

// Model-chunk micro-batches whose activations the stage holds at once: the warmup plus
// the forward that precedes the first backward, at most m * vpp. 1F1B: min(pp - rank, m),
// so the first stage holds the most. Interleaved first stage: vpp pp + pp - 1 chunks of
// L/(pp vpp) layers each, L (1 + (pp - 1)/(pp vpp)) layers in all (Korthikanti et al.
// 2022, sec. 4.2.3).
int64_t InFlightMicroBatches(int pp, int vpp, int64_t m, int pipeline_rank);

// Idle time over ideal compute time: (pp - 1) / (m vpp) (Narayanan et al. 2021, "Efficient
// Large-Scale Language Model Training on GPU Clusters", sec. 2.2). 0 without PP.
double BubbleFraction(int pp, int vpp, int64_t m);

}  // namespace gpt_rank::plan
