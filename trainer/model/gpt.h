// The GPT model as Megatron builds it (pre-norm blocks, final norm, LM head), on the
// fp32 CPU kernels of trainer/kernels/cpu, for both families of gpt_config.h: GPT-2
// (LayerNorm, learned positions, GELU(tanh), tied LM head) and Llama / Qwen2 (RMSNorm,
// RoPE on q and k, grouped-query attention, SwiGLU, optional q/k/v biases, tied or
// untied output layer).
// Owns the flat parameter and gradient buffers (layout: gpt_params.h) and the
// activations for up to (max_batch, max_seq). Forward returns the mean loss over
// tokens; Backward ACCUMULATES into the gradient buffer, so gradient accumulation is
// Forward/Backward per micro-batch with loss_scale = 1/num_micro_batches.
//
// Tensor parallel (Megatron): with a tensor-parallel communicator of tp ranks the model
// holds this rank's shard (layout: gpt_params.h) and runs the collectives of Megatron's
// layers over it: the vocab-parallel embedding (masked lookup, all-reduce), column-
// parallel QKV and fc (input copied; their input gradient all-reduced), row-parallel
// projections (outputs all-reduced, bias added after), the vocab-parallel LM head and
// cross-entropy. Dropout masks are keyed on the global head and position, so any tp
// gives the one-rank losses with dropout on.
//
// Parameters come from a ParamSource, module by module (gpt_params.h's Module: the
// embedding, each layer, the final norm + LM head): by default the model's own whole flat buffers;
// under ZeRO-3 (trainer/train/zero3.h) each module is gathered from the data-parallel
// partitions just before use and released (its gradients reduce-scattered) after.
//
// Not thread-safe: one rank's training loop drives it; the kernels use OpenMP inside.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "trainer/core/philox.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/gpt_config.h"
#include "trainer/model/gpt_params.h"

namespace trainer {

struct StepOptions {
  bool training = true;   // dropout on (when configured); false for eval
  uint64_t rng_step = 0;  // selects the dropout masks: the global position of row 0's
                          // sample in the training order (row b is rng_step + b), so a
                          // sample draws the same masks on any rank, micro-batch or
                          // resume (< 2^40)
  // Optional per-token (B, T) arrays of supervised fine-tuning (sft_packing.h), copied
  // by Forward; null: pretraining's defaults.
  const float* loss_weights = nullptr;  // the loss is sum_i w_i CE_i (null: the mean
                                        // over the B x T tokens)
  const int* position_ids = nullptr;    // RoPE positions in [0, max_seq) (null: t); rope only
  const int* segment_ids = nullptr;     // attention stays inside runs of equal ids (packed
                                        // samples); null: one segment per row
};

// Dropout sites inside a layer; part of the RNG stream id.
enum class DropoutSite : uint32_t {
  kEmbedding = 0,
  kAttentionProbs = 1,
  kAttentionOut = 2,
  kMlpOut = 3
};

// Megatron init (GptModel::InitMegatron) of a flat (layout.num_params(),) buffer, for
// backends that keep their parameters elsewhere (the CUDA model loads it). A
// tensor-parallel layout gets its shard of the one-rank weights.
void InitMegatronParams(const GptConfig& config, const GptParamLayout& layout, uint64_t seed,
                        float* params);
// The same values for the flat range [begin, end) only, into out (end - begin,): a
// ZeRO-3 partition initialises without ever holding the whole model.
void InitMegatronParamsRange(const GptConfig& config, const GptParamLayout& layout,
                             uint64_t seed, size_t begin, size_t end, float* out);

// The Philox stream of a dropout site: first sample of the batch (40 bits) | layer + 1
// (16 bits, 0 = embedding) | site (8 bits); row b of the batch then uses
// SampleStream(.., b), i.e. sample rng_step + b (philox.h). Both backends draw from it.
RngStream DropoutStream(uint64_t seed, uint64_t rng_step, int layer, DropoutSite site);

// What an acquisition of a Module (gpt_params.h) is for.
enum class Pass {
  kForward,    // parameters
  kBackward,   // parameters and gradient accumulators
  kGradsOnly,  // gradient accumulators only
};
struct ModuleView {
  ModuleTensors params;  // kForward, kBackward
  ModuleTensors grads;   // kBackward, kGradsOnly: the backward ACCUMULATES into these
};

// Where the model's parameters live. Acquire makes a module's tensors available until
// the matching Release; after Release(m, kBackward or kGradsOnly) the module's
// gradients from this backward are complete (the source reduces them). Calls come in
// the order ModuleKind's comment gives (gpt_params.h), one module at a time.
class ParamSource {
 public:
  virtual ~ParamSource() = default;
  virtual coord::StatusOr<ModuleView> Acquire(Module m, Pass pass) = 0;
  virtual coord::Status Release(Module m, Pass pass) = 0;
};

// The tensors of module m inside a whole flat buffer laid out by `layout`.
ModuleTensors WholeModuleTensors(const GptParams& views, Module m);

class GptModel {
 public:
  // Validates config, allocates params, grads (zeroed) and activations for (B, T) up
  // to (max_batch, max_seq). Params are zero until InitMegatron or a load. tp_comm: the
  // tensor-parallel group (null or size 1: the whole model); not owned, must outlive
  // the model; every rank of it calls Forward/Backward with the same batch.
  // source: where the parameters live (not owned, must outlive the model); null: the
  // model's own whole buffers. With a source the model allocates no parameter or
  // gradient buffer: param_data()/grad_data() are null and InitMegatron/ZeroGrad are
  // the source's business.
  // part: the layers this model runs (a pipeline stage's virtual chunk; layout:
  // gpt_params.h): without the embedding its input is the previous stage's output
  // (Forward's input_activation), without the head its output goes to the next stage
  // (output_activation) and its backward starts from that output's gradient.
  static coord::StatusOr<std::unique_ptr<GptModel>> Create(
      const GptConfig& config, int max_batch, int max_seq,
      gpt_rank::dist::Communicator* tp_comm = nullptr, ParamSource* source = nullptr,
      const ModelPart& part = ModelPart());

  const GptConfig& config() const { return config_; }
  const GptParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.num_params(); }
  float* param_data() { return params_memory_.data(); }  // (num_params,)
  const float* param_data() const { return params_memory_.data(); }
  float* grad_data() { return grads_memory_.data(); }  // (num_params,)
  const float* grad_data() const { return grads_memory_.data(); }
  const GptParams& params() const { return params_; }
  const GptParams& grads() const { return grads_; }

  // Megatron init (see ParamInit) from counter-based normals keyed by `seed`: the same
  // seed gives the same weights on any machine and thread count.
  void InitMegatron(uint64_t seed);
  void ZeroGrad();

  // inputs, targets are (B, T) token ids in [0, V). Returns the mean cross-entropy, or
  // with options.loss_weights the weighted sum (0 for a part without the head).
  // input_activation: the (B, T, C) input of a part without the embedding (copied), else
  // ignored.
  coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                 const StepOptions& options,
                                 const float* input_activation = nullptr);
  // (B, T, C) output of the last layer of the last Forward (a part without the head:
  // what the next stage receives). Valid until the next Forward.
  const float* output_activation() const;
  // Called during Backward each time the gradients in [from, num_params) are final
  // (after the final LayerNorm, after each layer l with layer_begin(l), and with 0
  // at the end; from only decreases): the data-parallel reducer starts a bucket's
  // reduction there while backward goes on. The embeddings come last because the tied
  // LM head's gradient is completed by the embedding backward.
  using GradsReadyFn = std::function<void(size_t from)>;

  // grads += d(loss_scale * mean loss)/d(params) for the last Forward. A part without
  // the head starts from output_grad, the (B, T, C) gradient of its output (copied;
  // loss_scale is then already in it).
  coord::Status Backward(float loss_scale, const GradsReadyFn& grads_ready = {},
                         const float* output_grad = nullptr);
  // (B, T, C) gradient of the last Backward's input (a part without the embedding:
  // what the previous stage receives). Valid until the next Backward.
  const float* input_grad() const { return grad_acts_.dresidual; }

  // Backward's buffers in *scratch instead of the model's own: models that never run
  // backward at the same time (a pipeline stage's micro-batches in flight) share one
  // set. input_grad() then points into it, valid until the next sharer's Backward.
  void ShareBackwardBuffers(std::vector<float>* scratch) { grad_scratch_ = scratch; }

  // (B, T, Vp) probabilities of the last Forward (valid until Backward).
  const float* probs() const { return acts_.logits; }

 private:
  GptModel(const GptConfig& config, int max_batch, int max_seq,
           gpt_rank::dist::Communicator* tp_comm, ParamSource* source, const ModelPart& part);
  class WholeBuffers;  // the default ParamSource: params_, grads_

  trainer::RngStream DropoutRng(int layer, DropoutSite site) const;
  // config_ with num_layers = this part's layers: the shape of its activations.
  GptConfig PartConfig() const {
    GptConfig c = config_;
    c.num_layers = static_cast<int>(layers_.size());
    return c;
  }
  // Elements per sample of a (B, T, C) activation: one dropout stream each.
  size_t RowElems() const { return static_cast<size_t>(T_) * config_.hidden_size; }
  coord::Status LayerForward(int l, const LayerParams& w, const LayerActivations& a,
                             const float* in, float* out);
  coord::Status LayerBackward(int l, const LayerParams& w, LayerParams& g,
                              const LayerActivations& a, const float* in);
  // The pre-attention / pre-MLP / final norm (LayerNorm or RMSNorm) of (B, T, C) rows.
  void NormForward(float* out, float* mean, float* rstd, const float* in, const float* w,
                   const float* b) const;
  void NormBackward(float* din, float* dw, float* db, const float* dout, const float* in,
                    const float* w, const float* mean, const float* rstd) const;
  // The row-parallel projections' output: sum over the tensor-parallel ranks, then the
  // (replicated) bias if any. A no-op for one rank, where matmul_forward added the bias.
  coord::Status RowParallelOutput(float* out, const float* bias);
  // Sum over the tensor-parallel ranks of a (B, T, C) partial (column-parallel input
  // gradients, the embedding lookup); no-op for one rank.
  coord::Status TpAllReduce(float* data, size_t count);
  coord::Status VocabParallelLoss();
  coord::Status HeadBackward(float loss_scale);  // acts_.logits -> probs, acts_.losses (tp > 1)
  // Checks and copies options' per-token arrays for a (B, T) batch.
  coord::Status TakeTokenOptions(const StepOptions& options, int B, int T);
  const int* positions() const { return positions_.empty() ? nullptr : positions_.data(); }
  const int* kv_begin() const { return kv_begin_.empty() ? nullptr : kv_begin_.data(); }

  GptConfig config_;
  gpt_rank::dist::Communicator* tp_comm_ = nullptr;  // null for one rank
  int tp_ = 1, tp_rank_ = 0;
  GptParamLayout layout_;
  std::vector<int> layers_;  // global indices of the layers this model runs, in order
  bool embedding_ = true, head_ = true;
  int max_batch_, max_seq_;
  std::vector<float> params_memory_;  // (num_params,)
  std::vector<float> grads_memory_;   // (num_params,)
  GptParams params_, grads_;
  std::unique_ptr<ParamSource> whole_;  // the default source (no external one)
  ParamSource* source_ = nullptr;       // whole_ or the external source
  std::vector<float> acts_memory_;       // ActivationFloats(max_batch, max_seq)
  std::vector<float> grad_acts_memory_;  // GradActivationFloats, allocated on first Backward
  std::vector<float>* grad_scratch_ = nullptr;  // shared instead (ShareBackwardBuffers)
  // Vocab-parallel loss scratch (tp > 1): per row max (gathered over ranks), sum of
  // exponentials, target logit.
  std::vector<float> ce_max_, ce_target_;
  std::vector<double> ce_sum_;
  // RoPE's cos and sin (max_seq, HS/2) for positions 0..max_seq-1 (rope only).
  std::vector<float> rope_cos_, rope_sin_;
  GptActivations acts_;                  // views for the (B, T) of the last Forward
  GptGradActivations grad_acts_;
  // Last Forward's batch, needed by Backward.
  int B_ = 0, T_ = 0;
  std::vector<int> inputs_, targets_;  // (B, T)
  // The last Forward's StepOptions arrays; empty when not given.
  std::vector<float> loss_weights_;  // (B, T)
  std::vector<int> positions_;       // (B, T)
  std::vector<int> kv_begin_;        // (B, T) first key of each token's segment
  bool training_ = false;
  uint64_t rng_step_ = 0;
  bool have_forward_ = false;
};

}  // namespace trainer
