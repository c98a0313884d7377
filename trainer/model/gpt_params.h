// Parameter layout of the model: every parameter lives in ONE contiguous fp32
// buffer (llm.c style), layer-major, so data-parallel all-reduce, ZeRO shards,
// pipeline stages and checkpoints all work on flat ranges. Gradients and Adam's m/v
// use the identical layout. Also the activation layout and the memory plan.
//
// Flat order: wte, wpe (learned positions only), then for l in 0..L-1 the tensors of
// layer l, then the final norm (lnf weight, lnf bias with LayerNorm) and the untied
// output layer (untie_embeddings_and_output_weights). A layer's tensors are the rows
// of kLayerSlots that the config has (GPT-2: all 12; RMSNorm drops the norm biases,
// --disable-bias-linear the linear biases, add_qkv_bias keeps the q/k/v one);
// layer_range(l) is one contiguous range. Shapes: qkv ((NH + 2 KV) HS, C), attn proj
// (C, NH HS), fc (F, C) or with SwiGLU (2F, C) = [gate | up], fc proj (C, F).
//
// Pipeline parallel (Megatron): a layout may hold a part of the model (ModelPart): a
// stage's layers, the embeddings on the first stage, the final norm and a copy of the
// tied word embedding (wte) - or the untied output layer - on the last; in the same
// relative order. Each tensor keeps its whole-model index (global_index) and name, so
// init, checkpoints and re-sharding find it whatever part holds it.
//
// Tensor parallel (Megatron): a layout for rank r of tp holds that rank's shard of each
// tensor, in the same flat order: the embedding and output layer split on the vocab
// (rows), the column-parallel QKV and fc split on the output dimension, the row-parallel
// attention and MLP projections split on the input dimension; norms, wpe and the
// row-parallel biases are replicated (added once, after the all-reduce). QKV without
// GQA is [q | k | v], each block split by heads (rank r owns heads [r NH/tp, ...));
// with GQA it is Megatron's grouped layout, per KV group g [q heads of g | k_g | v_g],
// split on rows so a rank owns whole groups (tp divides num_query_groups). SwiGLU's fc
// [gate | up] splits each half (rank r owns [gate_r | up_r]). ToFullIndex maps a
// shard's element to the full tensor's, Locate back, so init, checkpoints and
// re-sharding share one rule.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// The most layers a config may ask for. The largest published models have under 200;
// the bound keeps a config (or a checkpoint's, or an HF config.json) from sizing the
// per-layer tables by an untrusted number (42,753 layers took 2.7 s and 500 MB).
constexpr int kMaxGptLayers = 1024;

// Checks ranges and divisibility; one message per problem, with Megatron's names.
coord::Status ValidateGptConfig(const GptConfig& config);
// Megatron's spellings of the enumerations: "LayerNorm" / "RMSNorm";
// "learned_absolute" / "rope". Parse* fail with the accepted values.
const char* NormalizationName(Normalization n);
const char* PositionEmbeddingName(PositionEmbedding p);
coord::StatusOr<Normalization> ParseNormalization(const std::string& name);
coord::StatusOr<PositionEmbedding> ParsePositionEmbedding(const std::string& name);

// Whether tensor parallel size tp fits the model: it must divide the attention heads
// (and num_query_groups with GQA), F and the padded vocabulary. The message says which.
coord::Status CheckTensorParallel(const GptConfig& config, int tp);

// Megatron's init: weights normal(0, init_method_std); the two output projections of
// each layer (attn proj, fc proj) normal(0, init_method_std / sqrt(2 L)); biases 0;
// norm weights 1, biases 0 (megatron/model/utils.py scaled_init_method_normal).
enum class ParamInit { kNormal, kScaledNormal, kZero, kOne };

// How tensor parallel splits a tensor (see above).
enum class TpSplit {
  kReplicated,  // every rank holds all of it
  kRows,        // dim 0 in contiguous blocks (embedding: vocab; fc; grouped QKV)
  kQkvRows,     // dim 0 = [q | k | v], each block split by heads
  kColumns,     // dim 1 (row-parallel weights: the input features)
  kGluRows,     // dim 0 = [gate | up] (SwiGLU's fc), each half split in blocks
};

// One named tensor inside the flat buffer.
struct ParamTensorInfo {
  std::string name;   // ours, e.g. "layers.3.qkv_weight"
  size_t offset = 0;  // in floats from the buffer start
  size_t numel = 0;
  std::vector<int> shape;     // row-major
  bool weight_decay = false;  // weights and embeddings yes; biases and norms no
  int layer = -1;             // transformer layer, -1 for embeddings, final norm, output
  ParamInit init = ParamInit::kZero;
  TpSplit split = TpSplit::kReplicated;
  std::vector<int> full_shape;  // the whole tensor's shape (== shape without TP)
  int global_index = 0;         // index of this tensor in the whole model's layout
  // The last pipeline stage's copy of wte (the LM head), when the first stage holds
  // the embedding: the same values, kept in sync by the embedding group's all-reduce
  // of its gradient, and counted once in the clip norm (Megatron's shared weight).
  bool pipeline_copy = false;
};

// Which part of the model a layout or model holds: all of it by default; a pipeline
// stage or one of its virtual chunks otherwise (layers in the order they run).
struct ModelPart {
  std::vector<int> layers;  // global layer indices; ignored when whole
  bool whole = true;
  bool embedding = true;  // wte (+ wpe) (the first stage)
  bool head = true;       // final norm + the LM head (the last stage)
  // Megatron's split of L layers over pp stages x vpp virtual chunks: chunk c of stage
  // s runs virtual stage c * pp + s, layers [(c pp + s) L/(pp vpp), ... + L/(pp vpp)).
  // L must divide by pp x vpp (the config checks it).
  static ModelPart PipelineChunk(int num_layers, int pp, int vpp, int stage, int chunk);
  // All chunks of a stage (its parameters), in chunk order.
  static ModelPart PipelineStage(int num_layers, int pp, int vpp, int stage);
  // The layers it holds of a model of num_layers.
  std::vector<int> Layers(int num_layers) const;
};

// Pointers into one layer's slice of the flat buffer (params or grads); null where the
// config has no such tensor. QKV = (NH + 2 KV) HS, F = ffn_size(), FC = F or 2F.
struct LayerParams {
  float* ln1w;      // (C)
  float* ln1b;      // (C)       LayerNorm only
  float* qkvw;      // (QKV, C)  [q | k | v] head-major, or grouped per KV group (GQA)
  float* qkvb;      // (QKV)     add_bias_linear or add_qkv_bias
  float* attprojw;  // (C, NH HS)
  float* attprojb;  // (C)       add_bias_linear
  float* ln2w;      // (C)
  float* ln2b;      // (C)       LayerNorm only
  float* fcw;       // (FC, C)   SwiGLU: [gate | up]
  float* fcb;       // (FC)      add_bias_linear
  float* fcprojw;   // (C, F)
  float* fcprojb;   // (C)       add_bias_linear
};
// The rows of a layer's tensor table (LayerParams members in flat order).
enum LayerSlot : int {
  kLn1Weight,
  kLn1Bias,
  kQkvWeight,
  kQkvBias,
  kAttnProjWeight,
  kAttnProjBias,
  kLn2Weight,
  kLn2Bias,
  kFcWeight,
  kFcBias,
  kFcProjWeight,
  kFcProjBias,
  kNumLayerSlots
};
// The LayerParams member of each slot.
inline constexpr float* LayerParams::*kLayerSlotMembers[kNumLayerSlots] = {
    &LayerParams::ln1w,     &LayerParams::ln1b,     &LayerParams::qkvw,    &LayerParams::qkvb,
    &LayerParams::attprojw, &LayerParams::attprojb, &LayerParams::ln2w,    &LayerParams::ln2b,
    &LayerParams::fcw,      &LayerParams::fcb,      &LayerParams::fcprojw, &LayerParams::fcprojb};
// Whether a layer of `config` has the tensor of `slot`.
bool HasLayerSlot(const GptConfig& config, LayerSlot slot);
// Our name of a slot ("qkv_weight").
const char* LayerSlotName(LayerSlot slot);

// Named views of the whole flat buffer; null where the layout's part lacks a tensor.
struct GptParams {
  float* base = nullptr;            // (num_params,)
  float* wte = nullptr;             // (Vp, C) token embedding, also the LM head when tied
  float* wpe = nullptr;             // (maxT, C) position embedding (learned positions)
  std::vector<LayerParams> layers;  // L entries (global layer index; zeros if not held)
  float* lnfw = nullptr;            // (C) final norm
  float* lnfb = nullptr;            // (C) LayerNorm only
  float* output = nullptr;          // (Vp, C) the untied output layer (LM head)
};

// The units a ParamSource hands out (gpt.h), in the order the model uses them:
//   forward:  kEmbedding, kLayer 0 .. L-1, kHead
//   backward: kHead, kLayer L-1 .. 0 (with checkpoint_activations the recompute runs
//             inside the same acquisition), kEmbedding (gradients only: the embedding
//             backward reads token ids and dresidual, never the weights)
// kHead is the final norm plus the LM head: wte when tied, else the output layer.
enum class ModuleKind { kEmbedding, kLayer, kHead };
struct Module {
  ModuleKind kind = ModuleKind::kEmbedding;
  int layer = -1;  // kLayer only
};
// One module's tensors; null where the module does not hold the tensor.
struct ModuleTensors {
  float* wte = nullptr;
  float* wpe = nullptr;
  LayerParams layer{};
  float* lnfw = nullptr;
  float* lnfb = nullptr;
  float* output = nullptr;
  // The LM head's weight (Vp/tp, C): the untied output layer, else wte.
  float* lm_head() const { return output != nullptr ? output : wte; }
};

class GptParamLayout {
 public:
  // The whole model (tp_size 1), or rank tp_rank's shard of tp_size; of `part` of the
  // model. config must be valid and divisible by tp_size (heads or query groups, F,
  // padded vocab).
  explicit GptParamLayout(const GptConfig& config, int tp_size = 1, int tp_rank = 0,
                          const ModelPart& part = ModelPart());

  const GptConfig& config() const { return config_; }
  int tp_size() const { return tp_size_; }
  int tp_rank() const { return tp_rank_; }
  size_t num_params() const { return num_params_; }
  const std::vector<ParamTensorInfo>& tensors() const { return tensors_; }
  const ModelPart& part() const { return part_; }
  // Tensors per layer: the slots the config has, in slot order.
  int tensors_per_layer() const { return static_cast<int>(layer_slots_.size()); }
  const std::vector<LayerSlot>& layer_slots() const { return layer_slots_; }
  // Whole-model indices (global_index): of the slot's tensor of layer l (-1 when the
  // config has no such tensor), of wpe, of the final norm and of the output layer (-1
  // when absent). wte is 0.
  int layer_tensor_index(int l, LayerSlot slot) const {
    const int j = slot_position_[static_cast<size_t>(slot)];
    return j < 0 ? -1 : first_layer_index_ + l * tensors_per_layer() + j;
  }
  int wpe_index() const { return first_layer_index_ == 2 ? 1 : -1; }
  int lnf_weight_index() const {
    return first_layer_index_ + config_.num_layers * tensors_per_layer();
  }
  int lnf_bias_index() const { return config_.rms_norm() ? -1 : lnf_weight_index() + 1; }
  int output_index() const {
    return config_.tied_output() ? -1 : lnf_weight_index() + (config_.rms_norm() ? 1 : 2);
  }
  int num_global_tensors() const { return static_cast<int>(local_index_.size()); }
  // Index in tensors() of the tensor with this whole-model index; -1 if not held.
  int LocalIndex(int global_index) const {
    return global_index >= 0 && static_cast<size_t>(global_index) < local_index_.size()
               ? local_index_[static_cast<size_t>(global_index)]
               : -1;
  }
  bool has_layer(int l) const { return LocalIndex(layer_tensor_index(l, kLn1Weight)) >= 0; }
  // Flat [begin, end) of layer l's parameters (a layer this layout holds).
  size_t layer_begin(int l) const {
    return tensors_[static_cast<size_t>(LocalIndex(layer_tensor_index(l, kLn1Weight)))].offset;
  }
  size_t layer_end(int l) const {
    const ParamTensorInfo& last =
        tensors_[static_cast<size_t>(LocalIndex(layer_tensor_index(l, layer_slots_.back())))];
    return last.offset + last.numel;
  }
  // Views of a buffer of num_params() floats laid out as above.
  GptParams Views(float* base) const;
  // Views of layer l's tensors in a buffer holding only that layer (layer_base is
  // where layer_begin(l) lives).
  LayerParams LayerViews(int l, float* layer_base) const;
  // The whole-model indices of module m's tensors, in flat order (the head: wte first
  // when tied).
  std::vector<int> ModuleMembers(Module m) const;
  // Module m's tensors with each member (by whole-model index) at at(index).
  template <typename At>
  ModuleTensors BindModule(Module m, At at) const;
  // Flat index inside the whole tensor of element i of this layout's shard of t.
  size_t ToFullIndex(const ParamTensorInfo& t, size_t i) const;
  // The inverse for any rank of this layout's tp: which rank's shard of t holds the
  // whole tensor's element `full` (0 for a replicated tensor), and where in that shard.
  void Locate(const ParamTensorInfo& t, size_t full, int* rank, size_t* local) const;
  // [vocab_begin, vocab_end): the rows of wte (padded vocab) this shard holds.
  int vocab_begin() const { return tp_rank_ * (config_.padded_vocab_size() / tp_size_); }
  int vocab_end() const { return vocab_begin() + config_.padded_vocab_size() / tp_size_; }

 private:
  GptConfig config_;
  int tp_size_ = 1, tp_rank_ = 0;
  ModelPart part_;
  std::vector<LayerSlot> layer_slots_;  // the slots the config has
  std::vector<int> slot_position_;      // slot -> its place in layer_slots_, or -1
  int first_layer_index_ = 2;           // global index of layer 0's first tensor
  std::vector<ParamTensorInfo> tensors_;
  std::vector<int> local_index_;  // whole-model tensor index -> tensors() index, or -1
  size_t num_params_ = 0;
};

template <typename At>
ModuleTensors GptParamLayout::BindModule(Module m, At at) const {
  auto ptr = [&](int global) -> float* { return global < 0 ? nullptr : at(global); };
  ModuleTensors t;
  switch (m.kind) {
    case ModuleKind::kEmbedding:
      t.wte = ptr(0);
      t.wpe = ptr(wpe_index());
      break;
    case ModuleKind::kLayer:
      t.layer = LayerParams{};
      for (LayerSlot slot : layer_slots_) {
        t.layer.*kLayerSlotMembers[slot] = ptr(layer_tensor_index(m.layer, slot));
      }
      break;
    case ModuleKind::kHead:
      if (config_.tied_output()) t.wte = ptr(0);
      t.lnfw = ptr(lnf_weight_index());
      t.lnfb = ptr(lnf_bias_index());
      t.output = ptr(output_index());
      break;
  }
  return t;
}

// --- activations -------------------------------------------------------------

// Per-layer forward activations kept for backward. Without checkpoint_activations
// there are L of these; with it, one, reused by each layer's recomputation.
struct LayerActivations {
  float* ln1;        // (B, T, C)
  float* ln1_mean;   // (B, T)         LayerNorm only (unused with RMSNorm)
  float* ln1_rstd;   // (B, T)
  float* qkv;        // (B, T, QKV/tp)  this rank's heads' q, k, v (after RoPE with rope)
  float* att;        // (B, NH/tp, T, T) softmax probabilities (before attention dropout)
  float* atty;       // (B, T, C/tp)    attention output before the projection
  float* residual2;  // (B, T, C) input of ln2 = input + dropout(attn proj)
  float* ln2;        // (B, T, C)
  float* ln2_mean;   // (B, T)
  float* ln2_rstd;   // (B, T)
  float* fch;        // (B, T, FC/tp) fc output, before GELU (SwiGLU: [gate | up])
  float* fch_gelu;   // (B, T, F/tp)  GELU(fch), or silu(gate) * up
};

struct GptActivations {
  float* residual = nullptr;             // (L+1, B, T, C): [0] embeddings, [l+1] output of layer l
  std::vector<LayerActivations> layers;  // L entries, or 1 with checkpoint_activations
  float* scratch = nullptr;              // (B, T, C) projection output before dropout + residual
  float* lnf = nullptr;                  // (B, T, C)
  float* lnf_mean = nullptr;             // (B, T)
  float* lnf_rstd = nullptr;             // (B, T)
  float* logits = nullptr;  // (B, T, Vp/tp) logits -> probs (forward) -> dlogits (backward)
  float* losses = nullptr;  // (B, T)
};

// Backward-only buffers (allocated on the first backward).
struct GptGradActivations {
  float* dresidual = nullptr;  // (B, T, C) gradient flowing down the residual stream
  float* dbtc = nullptr;       // (B, T, C)
  float* dbtc2 = nullptr;      // (B, T, C)
  float* dqkv = nullptr;       // (B, T, QKV/tp)
  float* dfch = nullptr;       // (B, T, FC/tp)
  float* dfch_gelu = nullptr;  // (B, T, F/tp)
};

// Number of floats of the forward activations / backward buffers for (B, T) on one
// rank of tensor-parallel size tp (its heads, MLP slice and vocab slice; the (B, T, C)
// tensors are whole on every rank). head false: a pipeline stage without the final
// LayerNorm and LM head (no lnf, logits or losses; their views stay null).
size_t ActivationFloats(const GptConfig& config, int B, int T, bool checkpoint_activations,
                        int tp = 1, bool head = true);
size_t GradActivationFloats(const GptConfig& config, int B, int T, int tp = 1);
// Carves views out of buffers of those sizes.
GptActivations ActivationViews(float* base, const GptConfig& config, int B, int T,
                               bool checkpoint_activations, int tp = 1, bool head = true);
GptGradActivations GradActivationViews(float* base, const GptConfig& config, int B, int T,
                                       int tp = 1);

// --- memory plan -------------------------------------------------------------

struct MemoryPlan {
  size_t num_params = 0;
  size_t param_bytes = 0;
  size_t grad_bytes = 0;
  size_t optimizer_bytes = 0;                // Adam m and v, fp32
  size_t activation_bytes = 0;               // forward activations, no checkpointing
  size_t activation_bytes_checkpointed = 0;  // with checkpoint_activations
  size_t backward_bytes = 0;                 // backward-only buffers (either mode)
  // Peak for the configured mode (params + grads + optimizer + activations + backward).
  size_t total_bytes(bool checkpoint_activations) const;
};

MemoryPlan PlanMemory(const GptConfig& config, int B, int T, int tp = 1);
// Human-readable table (MiB), one line per item, for gpt-rank plan and the start log.
std::string FormatMemoryPlan(const MemoryPlan& plan, bool checkpoint_activations);

}  // namespace trainer
