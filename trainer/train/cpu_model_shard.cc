// The CPU backend of ModelShard (model_shard.h): GptModel in fp32 (the reference),
// AdamW over the owned range, DataParallel over gloo for the gradients (ZeRO 1/2).
#include <omp.h>

#include <algorithm>
#include <limits>

#include "trainer/optim/adamw.h"
#include "trainer/train/data_parallel.h"
#include "trainer/train/model_shard.h"

namespace gpt_rank::train {
namespace {

class CpuModelShard final : public ModelShard {
 public:
  CpuModelShard(std::unique_ptr<trainer::GptModel> model, std::unique_ptr<DataParallel> dp,
                dist::Communicator* tp_comm, const trainer::AdamWConfig& adam,
                std::string plan_text)
      : model_(std::move(model)),
        dp_(std::move(dp)),
        tp_comm_(tp_comm),
        adam_(model_->layout(), adam, dp_->shard_begin(), dp_->shard_end()),
        plan_text_(std::move(plan_text)) {}

  const trainer::GptConfig& config() const override { return model_->config(); }
  const trainer::GptParamLayout& layout() const override { return model_->layout(); }

  std::string Describe() const override {
    std::string out = "CPU, fp32, " + std::to_string(omp_get_max_threads()) + " threads";
    if (dp_->size() > 1) {
      out += "; gradients over " + std::string(dp_->comm().backend()) + ", ZeRO stage " +
             std::to_string(dp_->zero_stage());
      if (dp_->zero_stage() > 0) {
        out += " (this rank owns " + std::to_string(dp_->shard_end() - dp_->shard_begin()) +
               " of the optimizer's parameters)";
      }
    }
    return out + "\n" + plan_text_;
  }

  coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                 const trainer::StepOptions& options) override {
    return model_->Forward(inputs, targets, B, T, options);
  }

  coord::Status ZeroGrad() override {
    model_->ZeroGrad();
    return coord::Status::Ok();
  }

  coord::Status Backward(float loss_scale, int64_t m, int64_t num_micro) override {
    float* grads = model_->grad_data();
    RETURN_IF_ERROR(model_->Backward(loss_scale, dp_->BeginMicroBatch(grads, m, num_micro)));
    bool zero_grads = false;
    RETURN_IF_ERROR(dp_->EndMicroBatch(grads, &zero_grads));
    if (zero_grads) model_->ZeroGrad();
    return coord::Status::Ok();
  }

  // Stage 0: every rank holds the whole reduced gradient; ZeRO: its shard of it.
  coord::StatusOr<double> GradNormSquared() override {
    const size_t begin = dp_->shard_begin(), end = dp_->shard_end();
    return RangeGradNormSquared(layout(), model_->grad_data() + begin, begin, end,
                                dp_->zero_stage() >= 1 ? &dp_->comm() : nullptr, tp_comm_);
  }

  coord::Status Step(float lr, float grad_scale) override {
    // The scale (1/loss scale x clip coefficient) is applied as AdamW reads each
    // gradient: bitwise what scaling the buffer first gave, one pass fewer.
    adam_.Step(model_->param_data(), model_->grad_data(), lr, grad_scale);
    return dp_->GatherParams(model_->param_data());
  }

  int64_t optimizer_step() const override { return adam_.step(); }

  coord::Status InjectGradOverflow() override {
    model_->grad_data()[dp_->shard_begin()] = std::numeric_limits<float>::infinity();
    return coord::Status::Ok();
  }

  size_t optimizer_begin() const override { return adam_.begin(); }
  size_t optimizer_end() const override { return adam_.end(); }
  std::vector<size_t> optimizer_shard_counts() const override {
    if (dp_->zero_stage() == 0 || dp_->size() == 1) return {};
    return dp_->shard_counts();
  }

  coord::StatusOr<HostState> StateOnHost(std::vector<float>* /*scratch*/) override {
    return HostState{model_->param_data(), adam_.m(), adam_.v()};
  }

  coord::Status LoadState(const float* params, const float* adam_m, const float* adam_v,
                          int64_t step) override {
    std::copy(params, params + model_->num_params(), model_->param_data());
    if (adam_m != nullptr) adam_.LoadState(adam_m, adam_v, step);
    return coord::Status::Ok();
  }

 private:
  std::unique_ptr<trainer::GptModel> model_;
  std::unique_ptr<DataParallel> dp_;
  dist::Communicator* tp_comm_;  // this rank's tensor-parallel group (size 1 without TP)
  trainer::AdamW adam_;
  std::string plan_text_;  // the memory plan, for Describe
};

}  // namespace

coord::StatusOr<std::unique_ptr<ModelShard>> CreateCpuModelShard(const TrainerConfig& config,
                                                                 const ParallelGroups& groups) {
  const TrainingConfig& tr = config.training;
  const trainer::GptConfig& mc = config.model;
  const int B = static_cast<int>(tr.micro_batch_size);
  const std::string plan =
      "memory plan (micro batch " + std::to_string(B) +
      (config.parallel.zero_stage == 3 ? "; whole model, before ZeRO-3 partitions it: see "
                                         "gpt-rank plan" : "") +
      "):\n" +
      trainer::FormatMemoryPlan(trainer::PlanMemory(mc, B, mc.seq_length, groups.tp_size()),
                                mc.checkpoint_activations);
  if (groups.pp_size() > 1) return CreatePipelineModelShard(config, groups, plan);
  if (config.parallel.zero_stage == 3) return CreateCpuZero3ModelShard(config, groups, plan);
  ASSIGN_OR_RETURN(auto model,
                   trainer::GptModel::Create(mc, static_cast<int>(tr.micro_batch_size),
                                             mc.seq_length, groups.tensor));
  model->InitMegatron(tr.seed);
  DataParallelOptions dpo;
  dpo.zero_stage = config.parallel.zero_stage;
  dpo.bucket_floats = static_cast<size_t>(config.parallel.bucket_cap_mb * 1024 * 1024 / 4);
  dpo.overlap = config.parallel.overlap_grad_reduce;
  auto dp = std::make_unique<DataParallel>(groups.data, model->num_params(), dpo);
  return std::unique_ptr<ModelShard>(
      new CpuModelShard(std::move(model), std::move(dp), groups.tensor, tr.adam, plan));
}

}  // namespace gpt_rank::train
