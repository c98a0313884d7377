// CreateModelShard: the one place that chooses a backend by training.device, and the
// only code outside the CUDA backend that knows whether this build has one; and the
// clip norm the CPU shards share.
#include "trainer/train/model_shard.h"

#include "trainer/optim/adamw.h"

namespace gpt_rank::train {

coord::StatusOr<double> RangeGradNormSquared(const trainer::GptParamLayout& layout,
                                             const float* grads, size_t begin, size_t end,
                                             dist::Communicator* dp, dist::Communicator* tp) {
  double sq = tp->size() == 1
                  ? trainer::SumOfSquares(grads, end - begin)
                  : trainer::ShardSumOfSquares(layout, grads, begin, end, tp->rank() == 0);
  if (dp != nullptr) RETURN_IF_ERROR(dp->AllReduceSum(&sq, 1));
  RETURN_IF_ERROR(tp->AllReduceSum(&sq, 1));
  return sq;
}

coord::StatusOr<std::unique_ptr<ModelShard>> CreateModelShard(const TrainerConfig& config,
                                                              const ParallelGroups& groups,
                                                              dist::KeyValueStore* store) {
  if (config.training.device == "cpu") return CreateCpuModelShard(config, groups);
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
