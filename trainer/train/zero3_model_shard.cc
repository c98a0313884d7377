// The CPU backend under ZeRO stage 3 (model_shard.h, zero3.h): GptModel draws its
// parameters module by module from Zero3Params, which holds this rank's partition;
// AdamW updates the partition only. No full-size parameter or gradient buffer exists,
// except transiently when a checkpoint is saved or loaded (see StateOnHost).
#include <omp.h>

#include <algorithm>
#include <limits>

#include "trainer/optim/adamw.h"
#include "trainer/train/model_shard.h"
#include "trainer/train/zero3.h"

namespace gpt_rank::train {
namespace {

class Zero3ModelShard final : public ModelShard {
 public:
  Zero3ModelShard(std::unique_ptr<Zero3Params> zero, std::unique_ptr<trainer::GptModel> model,
                  dist::Communicator* dp_comm, dist::Communicator* tp_comm,
                  const trainer::AdamWConfig& adam, std::string plan_text)
      : zero_(std::move(zero)),
        model_(std::move(model)),
        dp_comm_(dp_comm),
        tp_comm_(tp_comm),
        adam_(model_->layout(), adam, zero_->begin(), zero_->end()),
        plan_text_(std::move(plan_text)) {}

  const trainer::GptConfig& config() const override { return model_->config(); }
  const trainer::GptParamLayout& layout() const override { return model_->layout(); }

  std::string Describe() const override {
    return "CPU, fp32, " + std::to_string(omp_get_max_threads()) +
           " threads; ZeRO stage 3 over " + dp_comm_->backend() + " (" +
           std::to_string(dp_comm_->size()) + " ranks): this rank owns " +
           std::to_string(zero_->end() - zero_->begin()) + " of " +
           std::to_string(model_->num_params()) + " parameters, " +
           std::to_string(zero_->persistent_numel()) +
           " kept whole (stage3_param_persistence_threshold); " +
           (zero_->options().prefetch_bucket > 0
                ? "gathers prefetched up to " + std::to_string(zero_->options().prefetch_bucket) +
                      " parameters ahead"
                : std::string("no prefetch")) +
           (zero_->options().overlap_comm ? ", reduce-scatter overlapped with backward"
                                          : ", reduce-scatter in line") +
           "\n" + plan_text_;
  }

  // Each pass ends with the queue drained (zero3.h): prefetched gathers overlap the
  // pass, and the communicator is the loop's again when it returns.
  coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                 const trainer::StepOptions& options) override {
    coord::StatusOr<float> loss = model_->Forward(inputs, targets, B, T, options);
    coord::Status drained = zero_->Drain();
    if (!loss.ok()) return loss;
    RETURN_IF_ERROR(drained);
    return loss;
  }

  coord::Status ZeroGrad() override { return zero_->ZeroGrad(); }

  // Each module's gradients are reduce-scattered into the partitions as its backward
  // ends (every micro-batch, as at stage 2), inside the model's Release calls; with
  // overlap_comm under the next module's backward.
  coord::Status Backward(float loss_scale, int64_t /*m*/, int64_t /*num_micro*/) override {
    coord::Status st = model_->Backward(loss_scale);
    coord::Status drained = zero_->Drain();
    RETURN_IF_ERROR(st);
    return drained;
  }

  coord::StatusOr<double> GradNormSquared() override {
    // Partition sums over the data group; with tensor parallel, Megatron's rule:
    // replicated tensors count once (tensor rank 0), sharded ones on every rank.
    return RangeGradNormSquared(layout(), zero_->grads(), zero_->begin(), zero_->end(), dp_comm_,
                                tp_comm_);
  }

  coord::Status Step(float lr, float grad_scale) override {
    adam_.StepShard(zero_->params(), zero_->grads(), lr, grad_scale);
    return zero_->ParamsUpdated();
  }

  int64_t optimizer_step() const override { return adam_.step(); }

  coord::Status InjectGradOverflow() override {
    // An empty partition (more ranks than elements) leaves it to the others: the norm
    // is all-reduced, so every rank sees the overflow.
    if (zero_->end() > zero_->begin()) zero_->grads()[0] = std::numeric_limits<float>::infinity();
    return coord::Status::Ok();
  }

  size_t optimizer_begin() const override { return adam_.begin(); }
  size_t optimizer_end() const override { return adam_.end(); }
  std::vector<size_t> optimizer_shard_counts() const override {
    if (dp_comm_->size() == 1) return {};
    return zero_->counts();
  }

  // Checkpoints keep the ZeRO-1/2 format (the whole parameters from DP rank 0, Adam
  // state per DP rank), so they re-shard across DP sizes and stages as those do: the
  // parameters are all-gathered for the save, holding the whole shard's parameters on
  // every rank while it runs (a per-partition parameter file is what 100B needs).
  coord::StatusOr<HostState> StateOnHost(std::vector<float>* scratch) override {
    scratch->resize(model_->num_params());
    RETURN_IF_ERROR(zero_->GatherAll(scratch->data()));
    return HostState{scratch->data(), adam_.m(), adam_.v()};
  }

  coord::Status LoadState(const float* params, const float* adam_m, const float* adam_v,
                          int64_t step) override {
    RETURN_IF_ERROR(zero_->Load(params));
    if (adam_m != nullptr) adam_.LoadState(adam_m, adam_v, step);
    return coord::Status::Ok();
  }

 private:
  std::unique_ptr<Zero3Params> zero_;  // before model_: the model draws on it
  std::unique_ptr<trainer::GptModel> model_;
  dist::Communicator* dp_comm_;
  dist::Communicator* tp_comm_;
  trainer::AdamW adam_;
  std::string plan_text_;
};

size_t Elements(int64_t v) { return v <= 0 ? 0 : static_cast<size_t>(v); }

}  // namespace

coord::StatusOr<std::unique_ptr<ModelShard>> CreateCpuZero3ModelShard(
    const TrainerConfig& config, const ParallelGroups& groups, const std::string& plan_text) {
  const TrainingConfig& tr = config.training;
  const trainer::GptConfig& mc = config.model;
  const ZeroConfig& z = config.parallel.zero;
  if (z.offload_param.cpu()) {
    return coord::FailedPrecondition(
        config.source_path +
        ": zero_optimization.offload_param.device \"cpu\" is not implemented on the CPU "
        "backend (its parameters already live in host memory); set it to \"none\"");
  }
  RETURN_IF_ERROR(trainer::ValidateGptConfig(mc));
  Zero3Options o;
  o.reduce_bucket = std::max<size_t>(1, Elements(z.reduce_bucket_size));
  o.max_live = Elements(z.stage3_max_live_parameters);
  o.max_reuse_distance = Elements(z.stage3_max_reuse_distance);
  o.persistence_threshold = Elements(z.stage3_param_persistence_threshold);
  o.prefetch_bucket = Elements(z.stage3_prefetch_bucket_size);
  o.overlap_comm = z.overlap_comm;
  const trainer::GptParamLayout layout(mc, groups.tp_size(), groups.tensor->rank());
  auto zero = std::make_unique<Zero3Params>(layout, groups.data, o);
  ASSIGN_OR_RETURN(auto model,
                   trainer::GptModel::Create(mc, static_cast<int>(tr.micro_batch_size),
                                             mc.seq_length, groups.tensor, zero.get()));
  zero->Init(mc, tr.seed);
  return std::unique_ptr<ModelShard>(new Zero3ModelShard(
      std::move(zero), std::move(model), groups.data, groups.tensor, tr.adam, plan_text));
}

}  // namespace gpt_rank::train
