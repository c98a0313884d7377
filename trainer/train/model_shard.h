// One rank's part of the model on one device, as the training loop drives it: the
// model (forward, backward), its gradients and their data-parallel reduction, the
// optimizer over the range this rank owns, and host views of the tensors for
// checkpoints. The loop (trainer.cc) sees only this interface, so every device runs
// the same loop:
//
//   ZeroGrad
//   ForwardBackward(load, num_micro, scale)   every micro-batch's forward and backward:
//                            gradient accumulation, or a pipeline stage's schedule;
//                            the data-parallel reduction inside
//   GradNormSquared          (of the reduced gradient, whole model: non-finite = overflow)
//   Step(lr, grad_scale)     (optimizer on the owned range, parameters re-gathered)
//
// Backends (ggml's split: one interface, one implementation per device):
//   CpuModelShard   GptModel (fp32 reference), AdamW, DataParallel over gloo with ZeRO 1/2
//   Zero3ModelShard GptModel on ZeRO-3 partitioned parameters (zero3.h), AdamW on the partition
//   CudaModelShard  CudaGptModel (fp32/bf16/fp16, AdamW on the GPU), NCCL gradient buckets
//   PipelineModelShard  one pipeline stage (its virtual chunks) on the CPU: Megatron's
//                   1F1B / interleaved schedules (pipeline_schedule.h), AdamW, ZeRO-1
// Parameters, gradients and optimizer state share the flat layout of gpt_params.h on
// every backend, so checkpoints move between devices in either direction.
//
// Not thread-safe: the training thread drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/flight_record.h"
#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/store.h"
#include "trainer/model/gpt.h"
#include "trainer/train/parallel_groups.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {

// Host views of the state a checkpoint holds: params (num_params,), and Adam's m and v
// over [optimizer_begin, optimizer_end). Valid until the next call on the shard.
struct HostState {
  const float* params = nullptr;
  const float* adam_m = nullptr;
  const float* adam_v = nullptr;
};

// One micro-batch's tokens as the training loop loads them: (B, T) host ids, valid
// until the next load, and the dropout counter of its first sample. Supervised
// fine-tuning adds (B, T) loss weights, position ids and segment ids (StepOptions;
// null for pretraining).
struct MicroBatch {
  const int* inputs = nullptr;
  const int* targets = nullptr;
  int batch = 0, seq = 0;  // B, T
  uint64_t rng_step = 0;
  const float* loss_weights = nullptr;
  const int* position_ids = nullptr;
  const int* segment_ids = nullptr;
};
// The StepOptions of a micro-batch: its dropout counter and per-token arrays.
trainer::StepOptions StepOptionsFor(const MicroBatch& mb, bool training);
// Loads micro-batch m (0-based) of the current iteration; Cancelled stops the step.
using MicroBatchLoader = std::function<coord::StatusOr<MicroBatch>(int64_t m)>;

class ModelShard {
 public:
  virtual ~ModelShard() = default;

  virtual const trainer::GptConfig& config() const = 0;
  virtual const trainer::GptParamLayout& layout() const = 0;
  size_t num_params() const { return layout().num_params(); }
  // Start-log lines: device, precision, memory plan, data-parallel layout.
  virtual std::string Describe() const = 0;

  // inputs, targets: (B, T) host token ids. Returns this rank's mean loss.
  virtual coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                         const trainer::StepOptions& options) = 0;
  virtual coord::Status ZeroGrad() = 0;
  // Forward and backward of micro-batches 0 .. num_micro-1, each contributing
  // loss_scale x its mean loss to the gradient (reduced inside, as Backward). Returns
  // the mean of their losses as this rank knows it (a pipeline's stages all get the
  // last stage's). The default runs Forward and Backward per micro-batch.
  virtual coord::StatusOr<double> ForwardBackward(const MicroBatchLoader& load, int64_t num_micro,
                                                  float loss_scale);
  // Forward only, dropout off (evaluation): the mean loss, as above.
  virtual coord::StatusOr<double> ForwardOnly(const MicroBatchLoader& load, int64_t num_micro);
  // grads += d(loss_scale * loss)/d(params) for the last Forward, micro-batch m of
  // num_micro; the data-parallel reduction of the gradient runs inside (overlapped with
  // backward where the backend can). After the last micro-batch the reduced gradient
  // is ready for GradNormSquared and Step.
  virtual coord::Status Backward(float loss_scale, int64_t m, int64_t num_micro) = 0;
  // sum of squares of the reduced gradient over the whole model (every rank gets the
  // same value; non-finite after an fp16 overflow).
  virtual coord::StatusOr<double> GradNormSquared() = 0;
  // One optimizer update at lr from grads * grad_scale (1/loss scale x clip coefficient)
  // of the owned range; afterwards every rank holds the updated parameters.
  virtual coord::Status Step(float lr, float grad_scale) = 0;
  virtual int64_t optimizer_step() const = 0;
  // Writes +inf into the reduced gradient, as an fp16 overflow would (fault injection).
  virtual coord::Status InjectGradOverflow() = 0;

  // Told as each micro-batch's forward and backward begin (the rank's flight record).
  using PhaseFn = std::function<void(coord::RankPhase phase, int64_t m)>;
  void set_phase_hook(PhaseFn fn) { phase_hook_ = std::move(fn); }

  // The flat range whose Adam state this rank owns (the whole model unless ZeRO
  // partitions it), and every rank's count when it is partitioned (empty otherwise).
  virtual size_t optimizer_begin() const = 0;
  virtual size_t optimizer_end() const = 0;
  virtual std::vector<size_t> optimizer_shard_counts() const = 0;
  // The state to save; copied into `scratch` where it does not live on the host.
  virtual coord::StatusOr<HostState> StateOnHost(std::vector<float>* scratch) = 0;
  // Loads params (num_params,) and, when m is not null, Adam's m and v over the owned
  // range with the update count `step`.
  virtual coord::Status LoadState(const float* params, const float* adam_m, const float* adam_v,
                                  int64_t step) = 0;

 protected:
  void Phase(coord::RankPhase phase, int64_t m) const {
    if (phase_hook_) phase_hook_(phase, m);
  }

 private:
  PhaseFn phase_hook_;
};

// The backend of config.training.device: Megatron init from training.seed (the same
// weights on every device, a tensor-parallel rank its shard of them). groups.data
// reduces the gradients, groups.tensor splits the model; `store` is the process
// group's (NCCL's set-up; null for one process). FailedPrecondition names what is
// missing (no CUDA in this build, no GPU, ...).
coord::StatusOr<std::unique_ptr<ModelShard>> CreateModelShard(const TrainerConfig& config,
                                                              const ParallelGroups& groups,
                                                              dist::KeyValueStore* store);

// The clip norm's ||g||^2 over the whole model, from the flat range [begin, end) of
// this rank's tensor-parallel shard that `grads` (pointing at element begin) holds:
// with tensor parallel, Megatron's rule (replicated tensors count once, on tensor rank
// 0); summed over `dp` when the range is a ZeRO partition (null when every
// data-parallel rank holds the same range), over `tp`, and over the pipeline stages
// `pp` (null without; the last stage's copy of wte is counted once, on the first).
// The CPU shards' GradNormSquared.
coord::StatusOr<double> RangeGradNormSquared(const trainer::GptParamLayout& layout,
                                             const float* grads, size_t begin, size_t end,
                                             dist::Communicator* dp, dist::Communicator* tp,
                                             dist::Communicator* pp = nullptr);

// The backends CreateModelShard chooses from. CreateCudaModelShard exists only in
// builds with CUDA (COORD_WITH_CUDA); model_shard.cc is the one place that knows.
coord::StatusOr<std::unique_ptr<ModelShard>> CreateCpuModelShard(const TrainerConfig& config,
                                                                 const ParallelGroups& groups);
// zero_optimization.stage 3 on the CPU backend (zero3_model_shard.cc); plan_text: the
// start log's memory plan.
coord::StatusOr<std::unique_ptr<ModelShard>> CreateCpuZero3ModelShard(
    const TrainerConfig& config, const ParallelGroups& groups, const std::string& plan_text);
// parallel.pipeline_model_parallel_size > 1 on the CPU backend (pipeline_model_shard.cc).
coord::StatusOr<std::unique_ptr<ModelShard>> CreatePipelineModelShard(
    const TrainerConfig& config, const ParallelGroups& groups, const std::string& plan_text);
coord::StatusOr<std::unique_ptr<ModelShard>> CreateCudaModelShard(const TrainerConfig& config,
                                                                  const ParallelGroups& groups,
                                                                  dist::KeyValueStore* store);

}  // namespace gpt_rank::train
