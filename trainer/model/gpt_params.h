// Parameter layout of the GPT model: every parameter lives in ONE contiguous fp32
// buffer (llm.c style), layer-major, so data-parallel all-reduce, ZeRO shards,
// pipeline stages and checkpoints all work on flat ranges. Gradients and Adam's m/v
// use the identical layout. Also the activation layout and the memory plan.
//
// Flat order: wte, wpe, then for l in 0..L-1 the 12 tensors of layer l (ln1, qkv,
// attn proj, ln2, fc, fc proj), then lnf. layer_range(l) is one contiguous range.
//
// Pipeline parallel (Megatron): a layout may hold a part of the model (ModelPart): a
// stage's layers, the embeddings on the first stage, the final LayerNorm and a copy of
// the tied word embedding (wte) on the last; in the same relative order (wte, wpe,
// the part's layers, lnf). Each tensor keeps its whole-model index (global_index) and
// name, so init, checkpoints and re-sharding find it whatever part holds it.
//
// Tensor parallel (Megatron): a layout for rank r of tp holds that rank's shard of each
// tensor, in the same flat order: the embedding split on the vocab (rows), the
// column-parallel QKV and fc split on the output dimension (QKV per block: rank r owns
// the q, k and v rows of heads [r*NH/tp, (r+1)*NH/tp)), the row-parallel attention and
// MLP projections split on the input dimension; LayerNorms, wpe and the row-parallel
// biases are replicated (added once, after the all-reduce). ToFullIndex maps a shard's
// element to the full tensor's, so init, checkpoints and re-sharding share one rule.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// Checks ranges and divisibility; one message per problem, with Megatron's names.
coord::Status ValidateGptConfig(const GptConfig& config);

// Megatron's init: weights normal(0, init_method_std); the two output projections of
// each layer (attn proj, fc proj) normal(0, init_method_std / sqrt(2 L)); biases 0;
// LayerNorm weight 1, bias 0 (megatron/model/utils.py scaled_init_method_normal).
enum class ParamInit { kNormal, kScaledNormal, kZero, kOne };

// How tensor parallel splits a tensor (see above).
enum class TpSplit {
  kReplicated,  // every rank holds all of it
  kRows,        // dim 0 in contiguous blocks (embedding: vocab; fc: output features)
  kQkvRows,     // dim 0 = [q | k | v], each block split by heads
  kColumns,     // dim 1 (row-parallel weights: the input features)
};

// One named tensor inside the flat buffer.
struct ParamTensorInfo {
  std::string name;   // ours, e.g. "layers.3.qkv_weight"
  size_t offset = 0;  // in floats from the buffer start
  size_t numel = 0;
  std::vector<int> shape;     // row-major
  bool weight_decay = false;  // weights and embeddings yes; biases and LayerNorm no
  int layer = -1;             // transformer layer, -1 for embeddings and final LN
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
  bool embedding = true;  // wte + wpe (the first stage)
  bool head = true;       // final LayerNorm + the tied LM head (the last stage)
  // Megatron's split of L layers over pp stages x vpp virtual chunks: chunk c of stage
  // s runs virtual stage c * pp + s, layers [(c pp + s) L/(pp vpp), ... + L/(pp vpp)).
  // L must divide by pp x vpp (the config checks it).
  static ModelPart PipelineChunk(int num_layers, int pp, int vpp, int stage, int chunk);
  // All chunks of a stage (its parameters), in chunk order.
  static ModelPart PipelineStage(int num_layers, int pp, int vpp, int stage);
  // The layers it holds of a model of num_layers.
  std::vector<int> Layers(int num_layers) const;
};

// Pointers into one layer's slice of the flat buffer (params or grads).
struct LayerParams {
  float* ln1w;      // (C)
  float* ln1b;      // (C)
  float* qkvw;      // (3C, C)  rows [q | k | v], each head-major (NH, HS)
  float* qkvb;      // (3C)
  float* attprojw;  // (C, C)
  float* attprojb;  // (C)
  float* ln2w;      // (C)
  float* ln2b;      // (C)
  float* fcw;       // (4C, C)
  float* fcb;       // (4C)
  float* fcprojw;   // (C, 4C)
  float* fcprojb;   // (C)
};
inline constexpr int kTensorsPerLayer = 12;

// Named views of the whole flat buffer; null where the layout's part lacks a tensor.
struct GptParams {
  float* base = nullptr;            // (num_params,)
  float* wte = nullptr;             // (Vp, C) token embedding, also the LM head (tied)
  float* wpe = nullptr;             // (maxT, C) position embedding
  std::vector<LayerParams> layers;  // L entries (global layer index; zeros if not held)
  float* lnfw = nullptr;            // (C) final LayerNorm
  float* lnfb = nullptr;            // (C)
};

class GptParamLayout {
 public:
  // The whole model (tp_size 1), or rank tp_rank's shard of tp_size; of `part` of the
  // model. config must be valid and divisible by tp_size (heads, 4C, padded vocab).
  explicit GptParamLayout(const GptConfig& config, int tp_size = 1, int tp_rank = 0,
                          const ModelPart& part = ModelPart());

  int tp_size() const { return tp_size_; }
  int tp_rank() const { return tp_rank_; }
  size_t num_params() const { return num_params_; }
  const std::vector<ParamTensorInfo>& tensors() const { return tensors_; }
  const ModelPart& part() const { return part_; }
  // Index of tensor j of layer l in a whole model's tensors() (global_index).
  static int layer_tensor_index(int l, int j) { return 2 + l * kTensorsPerLayer + j; }
  // Index in tensors() of the tensor with this whole-model index; -1 if not held.
  int LocalIndex(int global_index) const {
    return global_index >= 0 && static_cast<size_t>(global_index) < local_index_.size()
               ? local_index_[static_cast<size_t>(global_index)]
               : -1;
  }
  bool has_layer(int l) const { return LocalIndex(layer_tensor_index(l, 0)) >= 0; }
  // Flat [begin, end) of layer l's parameters (a layer this layout holds).
  size_t layer_begin(int l) const {
    return tensors_[static_cast<size_t>(LocalIndex(layer_tensor_index(l, 0)))].offset;
  }
  size_t layer_end(int l) const {
    const ParamTensorInfo& last =
        tensors_[static_cast<size_t>(LocalIndex(layer_tensor_index(l, kTensorsPerLayer - 1)))];
    return last.offset + last.numel;
  }
  // Views of a buffer of num_params() floats laid out as above.
  GptParams Views(float* base) const;
  // Views of layer l's tensors in a buffer holding only that layer (layer_base is
  // where layer_begin(l) lives).
  LayerParams LayerViews(int l, float* layer_base) const;
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
  std::vector<ParamTensorInfo> tensors_;
  std::vector<int> local_index_;  // whole-model tensor index -> tensors() index, or -1
  size_t num_params_ = 0;
};

// --- activations -------------------------------------------------------------

// Per-layer forward activations kept for backward. Without checkpoint_activations
// there are L of these; with it, one, reused by each layer's recomputation.
struct LayerActivations {
  float* ln1;        // (B, T, C)
  float* ln1_mean;   // (B, T)
  float* ln1_rstd;   // (B, T)
  float* qkv;        // (B, T, 3C/tp)   this rank's heads' [q | k | v]
  float* att;        // (B, NH/tp, T, T) softmax probabilities (before attention dropout)
  float* atty;       // (B, T, C/tp)    attention output before the projection
  float* residual2;  // (B, T, C) input of ln2 = input + dropout(attn proj)
  float* ln2;        // (B, T, C)
  float* ln2_mean;   // (B, T)
  float* ln2_rstd;   // (B, T)
  float* fch;        // (B, T, 4C/tp) fc output, before GELU
  float* fch_gelu;   // (B, T, 4C/tp)
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
  float* dqkv = nullptr;       // (B, T, 3C/tp)
  float* dfch = nullptr;       // (B, T, 4C/tp)
  float* dfch_gelu = nullptr;  // (B, T, 4C/tp)
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
