// Megatron's pipeline schedules (megatron/core/pipeline_parallel/schedules.py), over
// one interface so they can be run and tested apart from the model:
//
//   1F1B (forward_backward_pipelining_without_interleaving): stage s runs
//     warmup = min(pp - s - 1, m) forwards, then one forward / one backward until
//     the m forwards are done, then the remaining backwards (cooldown). A stage holds
//     at most pp - s micro-batches' activations; the bubble is (pp - 1) / m.
//   Interleaved (forward_backward_pipelining_with_interleaving): each stage holds vpp
//     model chunks (virtual stage c * pp + s for chunk c), micro-batches move through
//     the chunks in groups of pp, warmup = (pp - s - 1) * 2 + (vpp - 1) * pp forwards
//     (all of them when m == pp); the bubble shrinks to (pp - 1) / (m vpp). Needs
//     m % pp == 0 (checked by the config).
//   No pipelining (pp == 1): forward and backward per micro-batch.
//
// Activations and their gradients travel in batches of sends and receives
// (Communicator::SendRecv, Megatron's batch_isend_irecv: a stage sends its output
// forward and receives the next gradient in one step), activations on channel 0,
// gradients on channel 1, along the pipeline ring (the last stage's chunk c feeds the
// first stage's chunk c + 1). A failed or timed-out exchange names this stage, the
// peer stage and the micro-batch it was for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"

namespace gpt_rank::train {

// What one pipeline stage computes; the schedule calls it in its order. Buffers hold
// activation_floats() floats (B x T x C).
class PipelineStage {
 public:
  virtual ~PipelineStage() = default;
  virtual size_t activation_floats() const = 0;
  // Micro-batch m through virtual chunk `chunk`: input is the previous virtual stage's
  // output (null on the first virtual stage, which embeds the tokens); output receives
  // this chunk's output (null on the last virtual stage, which computes the loss).
  virtual coord::Status Forward(int chunk, int64_t m, const float* input, float* output) = 0;
  // Backward of micro-batch m through `chunk` (micro-batches of a chunk come back in
  // the order they went forward): output_grad is the next virtual stage's input
  // gradient (null on the last virtual stage); input_grad receives this chunk's (null
  // on the first virtual stage). Skipped entirely when forward_only.
  virtual coord::Status Backward(int chunk, int64_t m, const float* output_grad,
                                 float* input_grad) = 0;
};

struct PipelineShape {
  int pp = 1;           // stages
  int stage = 0;        // this rank's stage (its rank in the pipeline communicator)
  int vpp = 1;          // virtual chunks per stage (1: 1F1B)
  int64_t num_micro = 1;
};

// The number of warmup forwards of this stage (Megatron's num_warmup_microbatches).
int64_t WarmupMicroBatches(const PipelineShape& shape, bool forward_only);

// Runs one iteration's forwards (and backwards unless forward_only) of the schedule
// `shape` picks, exchanging over `pipeline` (size pp, rank = stage).
coord::Status RunPipelineSchedule(PipelineStage& stage, dist::Communicator& pipeline,
                                  const PipelineShape& shape, bool forward_only);

}  // namespace gpt_rank::train
