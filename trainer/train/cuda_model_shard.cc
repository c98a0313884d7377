// The CUDA backend of ModelShard (model_shard.h): CudaGptModel (weights, gradients and
// AdamW on GPU LOCAL_RANK) and, with several ranks, the NCCL gradient reducer. Built
// only with CUDA (COORD_WITH_CUDA).
#include <limits>

#include "common/logging.h"
#include "trainer/model/gpt_cuda.h"
#include "trainer/train/cuda_grad_reducer.h"
#include "trainer/train/model_shard.h"

namespace gpt_rank::train {
namespace {

class CudaModelShard final : public ModelShard {
 public:
  CudaModelShard(std::unique_ptr<trainer::CudaGptModel> model,
                 std::unique_ptr<CudaGradReducer> reducer, std::string description)
      : model_(std::move(model)),
        reducer_(std::move(reducer)),
        description_(std::move(description)) {}

  const trainer::GptConfig& config() const override { return model_->config(); }
  const trainer::GptParamLayout& layout() const override { return model_->layout(); }
  std::string Describe() const override { return description_; }

  coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                 const trainer::StepOptions& options) override {
    if (options.loss_weights != nullptr || options.position_ids != nullptr ||
        options.segment_ids != nullptr) {
      return coord::FailedPrecondition(
          "training.device \"cuda\": loss masks, position ids and packed segments (data.format "
          "\"sft\") are not implemented on the CUDA backend yet; fine-tune on \"cpu\"");
    }
    return model_->Forward(inputs, targets, B, T, options);
  }

  coord::Status ZeroGrad() override { return model_->ZeroGrad(); }

  coord::Status Backward(float loss_scale, int64_t m, int64_t num_micro) override {
    trainer::GptModel::GradsReadyFn ready;
    if (reducer_ != nullptr) ready = reducer_->BeginMicroBatch(m, num_micro);
    RETURN_IF_ERROR(model_->Backward(loss_scale, ready));
    if (reducer_ != nullptr) RETURN_IF_ERROR(reducer_->EndMicroBatch());
    return coord::Status::Ok();
  }

  // After the all-reduce every rank holds the whole reduced gradient.
  coord::StatusOr<double> GradNormSquared() override { return model_->GradNormSquared(); }

  coord::Status Step(float lr, float grad_scale) override { return model_->Step(lr, grad_scale); }
  int64_t optimizer_step() const override { return model_->adam_step(); }

  coord::Status InjectGradOverflow() override {
    std::vector<float> host(model_->num_params());
    RETURN_IF_ERROR(model_->StoreGrads(host.data()));
    host[0] = std::numeric_limits<float>::infinity();
    return model_->LoadGrads(host.data());
  }

  size_t optimizer_begin() const override { return 0; }
  size_t optimizer_end() const override { return model_->num_params(); }
  std::vector<size_t> optimizer_shard_counts() const override { return {}; }

  coord::StatusOr<HostState> StateOnHost(std::vector<float>* scratch) override {
    const size_t n = model_->num_params();
    scratch->resize(3 * n);
    RETURN_IF_ERROR(model_->StoreParams(scratch->data()));
    RETURN_IF_ERROR(model_->StoreOptimizer(scratch->data() + n, scratch->data() + 2 * n));
    return HostState{scratch->data(), scratch->data() + n, scratch->data() + 2 * n};
  }

  coord::Status LoadState(const float* params, const float* adam_m, const float* adam_v,
                          int64_t step) override {
    RETURN_IF_ERROR(model_->LoadParams(params));
    if (adam_m == nullptr) return coord::Status::Ok();
    return model_->LoadOptimizer(adam_m, adam_v, step);
  }

 private:
  std::unique_ptr<trainer::CudaGptModel> model_;
  std::unique_ptr<CudaGradReducer> reducer_;  // null for one rank
  std::string description_;
};

}  // namespace

coord::StatusOr<std::unique_ptr<ModelShard>> CreateCudaModelShard(const TrainerConfig& config,
                                                                  const ParallelGroups& groups,
                                                                  dist::KeyValueStore* store) {
  const TrainingConfig& tr = config.training;
  if (groups.tp_size() > 1) {
    return coord::FailedPrecondition(
        config.source_path + ": parallel.tensor_model_parallel_size " +
        std::to_string(groups.tp_size()) +
        " on training.device \"cuda\" is not implemented yet (the CPU backend has it)");
  }
  dist::Communicator* comm = groups.data;
  const trainer::GptConfig& mc = config.model;
  ASSIGN_OR_RETURN(trainer::Precision precision,
                   trainer::ParsePrecision(config.parallel.precision));
  if (config.parallel.zero_stage > 0 && comm->size() > 1) {
    return coord::FailedPrecondition(
        config.source_path + ": zero_optimization.stage " +
        std::to_string(config.parallel.zero_stage) +
        " is not implemented on training.device \"cuda\" yet (stage 0 is: every GPU keeps "
        "the optimizer); use stage 0 or the CPU backend");
  }
  ASSIGN_OR_RETURN(auto model, trainer::CudaGptModel::Create(
                                   mc, static_cast<int>(tr.micro_batch_size), mc.seq_length,
                                   precision, config.parallel.local_rank, tr.adam));
  {  // Megatron init on the host: the same weights as the CPU backend
    std::vector<float> init(model->num_params());
    trainer::InitMegatronParams(mc, model->layout(), tr.seed, init.data());
    RETURN_IF_ERROR(model->LoadParams(init.data()));
  }
  std::string description =
      trainer::DescribeCudaDevice(model->device()) + "\nGPU memory plan (micro batch " +
      std::to_string(tr.micro_batch_size) + ", " + trainer::PrecisionName(precision) + "):\n" +
      trainer::FormatCudaMemoryPlan(model->plan(), mc, precision);
  std::unique_ptr<CudaGradReducer> reducer;
  if (comm->size() > 1) {
    if (store == nullptr) {
      return coord::FailedPrecondition(
          "data-parallel CUDA training needs the process group's store to set up NCCL");
    }
    ASSIGN_OR_RETURN(
        reducer,
        CudaGradReducer::Create(
            store, comm->rank(), comm->size(), config.parallel.local_rank, model->stream(),
            model->grad_data(), model->num_params(),
            static_cast<size_t>(config.parallel.bucket_cap_mb * 1024 * 1024 / 4),
            config.parallel.overlap_grad_reduce, config.parallel.collective_timeout_s));
    description += "\ngradients over " + std::string(reducer->describe());
  }
  return std::unique_ptr<ModelShard>(
      new CudaModelShard(std::move(model), std::move(reducer), std::move(description)));
}

}  // namespace gpt_rank::train
