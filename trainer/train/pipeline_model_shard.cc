// One pipeline stage on the CPU backend (model_shard.h): the stage's parameters in one
// flat buffer (gpt_params.h's ModelPart layout: the embedding on the first stage, the
// final LayerNorm and a copy of the tied wte on the last, its layers in chunk order),
// a GptModel per virtual chunk and micro-batch in flight over that buffer, Megatron's
// schedules (pipeline_schedule.h), then Megatron's finalize_model_grads: the
// embedding group's all-reduce of the two wte gradients and the data-parallel
// reduction (ZeRO 0/1), AdamW on the owned range.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "trainer/optim/adamw.h"
#include "trainer/train/data_parallel.h"
#include "trainer/train/model_shard.h"
#include "trainer/train/pipeline_schedule.h"

namespace gpt_rank::train {
namespace {

// The stage's buffers as a ParamSource: every module is a view, nothing moves.
class StageBuffers final : public trainer::ParamSource {
 public:
  StageBuffers(const trainer::GptParams& params, const trainer::GptParams& grads)
      : params_(params), grads_(grads) {}
  coord::StatusOr<trainer::ModuleView> Acquire(trainer::Module m, trainer::Pass) override {
    return trainer::ModuleView{trainer::WholeModuleTensors(params_, m),
                               trainer::WholeModuleTensors(grads_, m)};
  }
  coord::Status Release(trainer::Module, trainer::Pass) override { return coord::Status::Ok(); }

 private:
  trainer::GptParams params_, grads_;
};

// One virtual chunk: its part of the model and one GptModel per micro-batch in flight
// (each keeps that micro-batch's activations until its backward).
struct Chunk {
  trainer::ModelPart part;
  std::vector<std::unique_ptr<trainer::GptModel>> models;
  std::vector<int64_t> holds;  // the micro-batch models[i] holds, -1 when free
};

class PipelineModelShard final : public ModelShard, private PipelineStage {
 public:
  PipelineModelShard(const TrainerConfig& config, const ParallelGroups& groups,
                     std::string plan_text)
      : config_(config.model),
        groups_(&groups),
        shape_{groups.pp_size(), groups.stage(), config.parallel.virtual_pipeline_model_parallel_size,
               1},
        layout_(config.model, groups.tp_size(), groups.tensor->rank(),
                trainer::ModelPart::PipelineStage(config.model.num_layers, shape_.pp, shape_.vpp,
                                                  shape_.stage)),
        params_(layout_.num_params(), 0.0f),
        grads_(layout_.num_params(), 0.0f),
        source_(layout_.Views(params_.data()), layout_.Views(grads_.data())),
        dp_(groups.data, layout_.num_params(), DataParallelOptionsFor(config)),
        adam_(layout_, config.training.adam, dp_.shard_begin(), dp_.shard_end()),
        micro_batch_(static_cast<int>(config.training.micro_batch_size)),
        plan_text_(std::move(plan_text)) {
    for (int c = 0; c < shape_.vpp; ++c) {
      chunks_.push_back(Chunk{trainer::ModelPart::PipelineChunk(config_.num_layers, shape_.pp,
                                                                shape_.vpp, shape_.stage, c),
                              {},
                              {}});
    }
    trainer::InitMegatronParams(config_, layout_, config.training.seed, params_.data());
  }

  const trainer::GptConfig& config() const override { return config_; }
  const trainer::GptParamLayout& layout() const override { return layout_; }

  std::string Describe() const override {
    const std::vector<int> layers = layout_.part().layers;
    std::string out = "CPU, fp32, " + std::to_string(omp_get_max_threads()) +
                      " threads; pipeline stage " + std::to_string(shape_.stage) + " of " +
                      std::to_string(shape_.pp) + ": layers";
    for (const Chunk& c : chunks_) {
      out += " " + std::to_string(c.part.layers.front()) + "-" +
             std::to_string(c.part.layers.back());
    }
    if (layout_.part().embedding) out += ", the embeddings";
    if (layout_.part().head) out += ", the final LayerNorm and LM head";
    if (dp_.size() > 1) {
      out += "; gradients over " + std::string(groups_->data->backend()) + ", ZeRO stage " +
             std::to_string(dp_.zero_stage());
    }
    return out + "\n" + plan_text_;
  }

  // The stage runs only inside the schedule; a lone Forward/Backward has no peer.
  coord::StatusOr<float> Forward(const int*, const int*, int, int,
                                 const trainer::StepOptions&) override {
    return coord::FailedPrecondition("a pipeline stage runs through ForwardBackward");
  }
  coord::Status Backward(float, int64_t, int64_t) override {
    return coord::FailedPrecondition("a pipeline stage runs through ForwardBackward");
  }

  coord::StatusOr<double> ForwardBackward(const MicroBatchLoader& load, int64_t num_micro,
                                          float loss_scale) override {
    RETURN_IF_ERROR(RunSchedule(load, num_micro, loss_scale, /*forward_only=*/false));
    RETURN_IF_ERROR(FinalizeGrads(num_micro));
    return StageLoss(num_micro);
  }

  coord::StatusOr<double> ForwardOnly(const MicroBatchLoader& load, int64_t num_micro) override {
    RETURN_IF_ERROR(RunSchedule(load, num_micro, 0.0f, /*forward_only=*/true));
    return StageLoss(num_micro);
  }

  coord::Status ZeroGrad() override {
    std::fill(grads_.begin(), grads_.end(), 0.0f);
    return coord::Status::Ok();
  }

  coord::StatusOr<double> GradNormSquared() override {
    const size_t begin = dp_.shard_begin(), end = dp_.shard_end();
    return RangeGradNormSquared(layout_, grads_.data() + begin, begin, end,
                                dp_.zero_stage() >= 1 ? &dp_.comm() : nullptr, groups_->tensor,
                                groups_->pipeline);
  }

  coord::Status Step(float lr, float grad_scale) override {
    adam_.Step(params_.data(), grads_.data(), lr, grad_scale);
    return dp_.GatherParams(params_.data());
  }

  int64_t optimizer_step() const override { return adam_.step(); }

  coord::Status InjectGradOverflow() override {
    if (dp_.shard_end() > dp_.shard_begin()) {
      grads_[dp_.shard_begin()] = std::numeric_limits<float>::infinity();
    }
    return coord::Status::Ok();
  }

  size_t optimizer_begin() const override { return adam_.begin(); }
  size_t optimizer_end() const override { return adam_.end(); }
  std::vector<size_t> optimizer_shard_counts() const override {
    if (dp_.zero_stage() == 0 || dp_.size() == 1) return {};
    return dp_.shard_counts();
  }

  coord::StatusOr<HostState> StateOnHost(std::vector<float>*) override {
    return HostState{params_.data(), adam_.m(), adam_.v()};
  }

  coord::Status LoadState(const float* params, const float* adam_m, const float* adam_v,
                          int64_t step) override {
    std::copy(params, params + params_.size(), params_.begin());
    if (adam_m != nullptr) adam_.LoadState(adam_m, adam_v, step);
    return coord::Status::Ok();
  }

 private:
  static DataParallelOptions DataParallelOptionsFor(const TrainerConfig& config) {
    DataParallelOptions o;
    o.zero_stage = config.parallel.zero_stage;  // 0 or 1: the config refuses 2 and 3 with PP
    o.bucket_floats = static_cast<size_t>(config.parallel.bucket_cap_mb * 1024 * 1024 / 4);
    o.overlap = false;  // reduced after the pipeline flush, as Megatron's finalize_model_grads
    return o;
  }

  coord::Status RunSchedule(const MicroBatchLoader& load, int64_t num_micro, float loss_scale,
                            bool forward_only) {
    load_ = &load;
    loss_scale_ = loss_scale;
    training_ = !forward_only;
    loss_sum_ = 0.0;
    PipelineShape shape = shape_;
    shape.num_micro = num_micro;
    coord::Status s = RunPipelineSchedule(*this, *groups_->pipeline, shape, forward_only);
    load_ = nullptr;
    for (Chunk& c : chunks_) std::fill(c.holds.begin(), c.holds.end(), -1);
    return s;
  }

  // The tied embedding's two copies get the sum of their gradients (Megatron's
  // embedding group), then the data-parallel reduction of the whole stage.
  coord::Status FinalizeGrads(int64_t num_micro) {
    // Untied models have no shared weight: the last stage's output layer is its own.
    if (groups_->embedding != nullptr && layout_.config().tied_output()) {
      const trainer::ParamTensorInfo& wte = layout_.tensors()[static_cast<size_t>(
          layout_.LocalIndex(0))];
      RETURN_IF_ERROR(groups_->embedding->AllReduceSum(grads_.data() + wte.offset, wte.numel));
    }
    (void)dp_.BeginMicroBatch(grads_.data(), num_micro - 1, num_micro);
    bool zero_grads = false;
    return dp_.EndMicroBatch(grads_.data(), &zero_grads);  // stage 0/1: never zeroes
  }

  // The mean loss over the micro-batches, which only the last stage computes: it
  // broadcasts it to the other stages.
  coord::StatusOr<double> StageLoss(int64_t num_micro) {
    double loss = loss_sum_ / static_cast<double>(num_micro);
    RETURN_IF_ERROR(groups_->pipeline->Broadcast(&loss, 1, dist::DataType::kFloat64, shape_.pp - 1));
    return loss;
  }

  // --- PipelineStage -----------------------------------------------------------

  size_t activation_floats() const override {
    return static_cast<size_t>(micro_batch_) * config_.seq_length * config_.hidden_size;
  }

  coord::Status Forward(int chunk, int64_t m, const float* input, float* output) override {
    ASSIGN_OR_RETURN(const MicroBatch mb, (*load_)(m));
    Phase(coord::RankPhase::kForward, m);
    ASSIGN_OR_RETURN(trainer::GptModel * model, ModelFor(chunk, m, /*take=*/true));
    const trainer::StepOptions options = StepOptionsFor(mb, training_);
    ASSIGN_OR_RETURN(const float loss,
                     model->Forward(mb.inputs, mb.targets, mb.batch, mb.seq, options, input));
    if (chunks_[static_cast<size_t>(chunk)].part.head) loss_sum_ += loss;
    if (output != nullptr) {
      std::memcpy(output, model->output_activation(), activation_floats() * sizeof(float));
    }
    if (!training_) Free(chunk, m);
    return coord::Status::Ok();
  }

  coord::Status Backward(int chunk, int64_t m, const float* output_grad,
                         float* input_grad) override {
    Phase(coord::RankPhase::kBackward, m);
    ASSIGN_OR_RETURN(trainer::GptModel * model, ModelFor(chunk, m, /*take=*/false));
    RETURN_IF_ERROR(model->Backward(loss_scale_, {}, output_grad));
    if (input_grad != nullptr) {
      std::memcpy(input_grad, model->input_grad(), activation_floats() * sizeof(float));
    }
    Free(chunk, m);
    return coord::Status::Ok();
  }

  // The model holding micro-batch m of `chunk`; take: a free one (created when all
  // are in flight: the schedule bounds how many).
  coord::StatusOr<trainer::GptModel*> ModelFor(int chunk, int64_t m, bool take) {
    Chunk& c = chunks_[static_cast<size_t>(chunk)];
    const int64_t want = take ? -1 : m;
    for (size_t i = 0; i < c.models.size(); ++i) {
      if (c.holds[i] != want) continue;
      c.holds[i] = m;
      return c.models[i].get();
    }
    if (!take) {
      return coord::Internal("pipeline stage " + std::to_string(shape_.stage) +
                             ": backward of micro-batch " + std::to_string(m) + " (chunk " +
                             std::to_string(chunk) + ") without its forward");
    }
    ASSIGN_OR_RETURN(auto model,
                     trainer::GptModel::Create(config_, micro_batch_, config_.seq_length,
                                               groups_->tensor, &source_, c.part));
    model->ShareBackwardBuffers(&backward_scratch_);  // one backward runs at a time
    c.models.push_back(std::move(model));
    c.holds.push_back(m);
    return c.models.back().get();
  }

  void Free(int chunk, int64_t m) {
    Chunk& c = chunks_[static_cast<size_t>(chunk)];
    for (int64_t& h : c.holds) {
      if (h == m) h = -1;
    }
  }

  trainer::GptConfig config_;
  const ParallelGroups* groups_;  // the trainer's; outlives the shard
  PipelineShape shape_;
  trainer::GptParamLayout layout_;
  std::vector<float> params_, grads_;  // (layout_.num_params(),)
  StageBuffers source_;
  DataParallel dp_;
  trainer::AdamW adam_;
  int micro_batch_;
  std::string plan_text_;
  std::vector<Chunk> chunks_;
  std::vector<float> backward_scratch_;  // every model's backward buffers
  // The iteration in progress (RunSchedule).
  const MicroBatchLoader* load_ = nullptr;
  float loss_scale_ = 0.0f;
  bool training_ = false;
  double loss_sum_ = 0.0;  // last stage: the losses of the micro-batches so far
};

}  // namespace

coord::StatusOr<std::unique_ptr<ModelShard>> CreatePipelineModelShard(
    const TrainerConfig& config, const ParallelGroups& groups, const std::string& plan_text) {
  const trainer::GptConfig& mc = config.model;
  const int pp = groups.pp_size(), vpp = config.parallel.virtual_pipeline_model_parallel_size;
  if (vpp < 1 || mc.num_layers % (pp * vpp) != 0) {
    return coord::InvalidArgument(
        config.source_path + ": model.num_layers (" + std::to_string(mc.num_layers) +
        ") must divide evenly over " + std::to_string(pp) + " pipeline stages x " +
        std::to_string(vpp) + " virtual chunks");
  }
  if (config.parallel.zero_stage >= 2) {
    return coord::InvalidArgument(config.source_path + ": ZeRO stage " +
                                  std::to_string(config.parallel.zero_stage) +
                                  " cannot be combined with pipeline parallel; use stage 1");
  }
  RETURN_IF_ERROR(trainer::ValidateGptConfig(mc));
  return std::unique_ptr<ModelShard>(new PipelineModelShard(config, groups, plan_text));
}

}  // namespace gpt_rank::train
