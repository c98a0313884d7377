// CreateModelShard: the one place that chooses a backend by training.device, and the
// only code outside the CUDA backend that knows whether this build has one; and the
// clip norm the CPU shards share.
#include "trainer/train/model_shard.h"

#include "trainer/optim/adamw.h"

namespace gpt_rank::train {

coord::StatusOr<double> RangeGradNormSquared(const trainer::GptParamLayout& layout,
                                             const float* grads, size_t begin, size_t end,
                                             dist::Communicator* dp, dist::Communicator* tp,
                                             dist::Communicator* pp) {
  const bool whole = tp->size() == 1 && (pp == nullptr || pp->size() == 1);
  double sq = whole ? trainer::SumOfSquares(grads, end - begin)
                    : trainer::ShardSumOfSquares(layout, grads, begin, end, tp->rank() == 0);
  if (dp != nullptr) RETURN_IF_ERROR(dp->AllReduceSum(&sq, 1));
  RETURN_IF_ERROR(tp->AllReduceSum(&sq, 1));
  if (pp != nullptr) RETURN_IF_ERROR(pp->AllReduceSum(&sq, 1));
  return sq;
}

trainer::StepOptions StepOptionsFor(const MicroBatch& mb, bool training) {
  trainer::StepOptions options;
  options.training = training;
  options.rng_step = mb.rng_step;
  options.loss_weights = mb.loss_weights;
  options.position_ids = mb.position_ids;
  options.segment_ids = mb.segment_ids;
  return options;
}

coord::StatusOr<double> ModelShard::ForwardBackward(const MicroBatchLoader& load,
                                                    int64_t num_micro, float loss_scale) {
  double loss = 0.0;
  for (int64_t m = 0; m < num_micro; ++m) {
    ASSIGN_OR_RETURN(const MicroBatch mb, load(m));
    const trainer::StepOptions options = StepOptionsFor(mb, true);
    Phase(coord::RankPhase::kForward, m);
    ASSIGN_OR_RETURN(const float l, Forward(mb.inputs, mb.targets, mb.batch, mb.seq, options));
    loss += static_cast<double>(l) / static_cast<double>(num_micro);
    Phase(coord::RankPhase::kBackward, m);
    RETURN_IF_ERROR(Backward(loss_scale, m, num_micro));
  }
  return loss;
}

coord::StatusOr<double> ModelShard::ForwardOnly(const MicroBatchLoader& load, int64_t num_micro) {
  double loss = 0.0;
  for (int64_t m = 0; m < num_micro; ++m) {
    ASSIGN_OR_RETURN(const MicroBatch mb, load(m));
    trainer::StepOptions options = StepOptionsFor(mb, false);
    options.rng_step = 0;  // no dropout in evaluation
    Phase(coord::RankPhase::kForward, m);
    ASSIGN_OR_RETURN(const float l, Forward(mb.inputs, mb.targets, mb.batch, mb.seq, options));
    loss += l;
  }
  return loss / static_cast<double>(num_micro);
}

coord::StatusOr<std::unique_ptr<ModelShard>> CreateModelShard(const TrainerConfig& config,
                                                              const ParallelGroups& groups,
                                                              dist::KeyValueStore* store) {
  if (config.training.device == "cpu") return CreateCpuModelShard(config, groups);
  if (groups.pp_size() > 1) {  // the CUDA backend has no pipeline stages yet
    return coord::FailedPrecondition(
        config.source_path + ": parallel.pipeline_model_parallel_size " +
        std::to_string(groups.pp_size()) + " is not implemented on training.device \"cuda\" yet "
        "(the CPU backend has it: training.device \"cpu\")");
  }
  if (config.training.device == "cuda") {
    if (config.parallel.zero_stage == 3) {  // refused in every build, GPU or not
      return coord::FailedPrecondition(
          config.source_path +
          ": zero_optimization.stage 3 is not implemented on training.device \"cuda\" yet "
          "(the CPU backend has it: training.device \"cpu\"); use stage 0 on the GPU");
    }
#if COORD_HAVE_CUDA
    return CreateCudaModelShard(config, groups, store);
#else
    (void)store;
    return coord::FailedPrecondition(
        config.source_path +
        ": training.device is \"cuda\" but this gpt-rank was built without CUDA (cmake "
        "-DCOORD_WITH_CUDA=ON with nvcc installed), or train with training.device \"cpu\"");
#endif
  }
  return coord::InvalidArgument(config.source_path + ": training.device: expected \"cpu\" or "
                                "\"cuda\", got \"" + config.training.device + "\"");
}

}  // namespace gpt_rank::train
