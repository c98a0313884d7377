// The model's forward/backward on the CPU kernels (see gpt.h): embedding, the layers
// (gpt_layer.cc), the head and loss; the ParamSource choreography. Per layer, exactly
// Megatron's ParallelTransformerLayer with pre-norm:
//   x1 = x  + dropout(attn_proj(attention(ln1(x))))
//   y  = x1 + dropout(fc_proj(act(fc(ln2(x1)))))     act: GELU or SwiGLU
// With checkpoint_activations only the layer inputs (residual[l]) are kept;
// backward re-runs LayerForward for layer l into the single activation slot
// right before LayerBackward(l). Same kernels, same inputs, same dropout
// streams, so the recomputed activations - and hence the gradients - are
// bitwise identical.
#include "trainer/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "trainer/core/philox.h"
#include "trainer/kernels/cpu/dropout.h"
#include "trainer/kernels/cpu/encoder.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/rope.h"
#include "trainer/kernels/cpu/softmax_cross_entropy.h"
#include "trainer/kernels/cpu/vocab_parallel.h"

namespace trainer {

namespace cpu = kernels::cpu;

namespace {

// Different Philox keys for init and dropout, so their streams never coincide.
constexpr uint64_t kInitKeyOffset = 0x9E3779B97F4A7C15ull;

void Zero(float* p, size_t n) { std::memset(p, 0, n * sizeof(float)); }

}  // namespace

ModuleTensors WholeModuleTensors(const GptParams& views, Module m) {
  ModuleTensors t;
  switch (m.kind) {
    case ModuleKind::kEmbedding:
      t.wte = views.wte;
      t.wpe = views.wpe;
      break;
    case ModuleKind::kLayer:
      t.layer = views.layers[static_cast<size_t>(m.layer)];
      break;
    case ModuleKind::kHead:
      if (views.output == nullptr) t.wte = views.wte;  // tied LM head
      t.lnfw = views.lnfw;
      t.lnfb = views.lnfb;
      t.output = views.output;
      break;
  }
  return t;
}

// Today's layout: every module is a view of the whole buffers, nothing moves.
class GptModel::WholeBuffers final : public ParamSource {
 public:
  explicit WholeBuffers(GptModel* model) : model_(model) {}
  coord::StatusOr<ModuleView> Acquire(Module m, Pass /*pass*/) override {
    return ModuleView{WholeModuleTensors(model_->params_, m),
                      WholeModuleTensors(model_->grads_, m)};
  }
  coord::Status Release(Module /*m*/, Pass /*pass*/) override { return coord::Status::Ok(); }

 private:
  GptModel* model_;
};

GptModel::GptModel(const GptConfig& config, int max_batch, int max_seq,
                   gpt_rank::dist::Communicator* tp_comm, ParamSource* source,
                   const ModelPart& part)
    : config_(config),
      tp_comm_(tp_comm != nullptr && tp_comm->size() > 1 ? tp_comm : nullptr),
      tp_(tp_comm_ != nullptr ? tp_comm_->size() : 1),
      tp_rank_(tp_comm_ != nullptr ? tp_comm_->rank() : 0),
      layout_(config, tp_, tp_rank_, part),
      layers_(part.Layers(config.num_layers)),
      embedding_(part.whole || part.embedding),
      head_(part.whole || part.head),
      max_batch_(max_batch),
      max_seq_(max_seq) {
  if (source != nullptr) {
    source_ = source;
  } else {
    params_memory_.assign(layout_.num_params(), 0.0f);
    grads_memory_.assign(layout_.num_params(), 0.0f);
    params_ = layout_.Views(params_memory_.data());
    grads_ = layout_.Views(grads_memory_.data());
    whole_ = std::make_unique<WholeBuffers>(this);
    source_ = whole_.get();
  }
  acts_memory_.assign(ActivationFloats(PartConfig(), max_batch, max_seq,
                                      config.checkpoint_activations, tp_, head_),
                     0.0f);
  if (config.rope()) {
    const size_t half = static_cast<size_t>(config.head_size() / 2);
    rope_cos_.assign(static_cast<size_t>(max_seq) * half, 0.0f);
    rope_sin_.assign(rope_cos_.size(), 0.0f);
    cpu::rope_table(rope_cos_.data(), rope_sin_.data(), max_seq, config.head_size(),
                    config.rotary_base);
  }
  if (tp_ > 1) {
    const size_t BT = static_cast<size_t>(max_batch) * max_seq;
    ce_max_.assign(BT * tp_, 0.0f);
    ce_target_.assign(BT, 0.0f);
    ce_sum_.assign(BT, 0.0);
  }
}

coord::StatusOr<std::unique_ptr<GptModel>> GptModel::Create(const GptConfig& config, int max_batch,
                                                            int max_seq,
                                                            gpt_rank::dist::Communicator* tp_comm,
                                                            ParamSource* source,
                                                            const ModelPart& part) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  for (int l : part.Layers(config.num_layers)) {
    if (l < 0 || l >= config.num_layers) {
      return coord::InvalidArgument("GptModel: layer " + std::to_string(l) + " of a model of " +
                                    std::to_string(config.num_layers) + " layers");
    }
  }
  if (!part.whole && source == nullptr) {
    return coord::InvalidArgument("GptModel: a part of the model needs a ParamSource");
  }
  if (tp_comm != nullptr && tp_comm->size() > 1) {
    RETURN_IF_ERROR(CheckTensorParallel(config, tp_comm->size()));
  }
  if (max_batch <= 0 || max_seq <= 0 || max_seq > config.max_position_embeddings) {
    return coord::InvalidArgument(
        "GptModel: need 0 < batch and 0 < seq <= "
        "max_position_embeddings (" +
        std::to_string(config.max_position_embeddings) + "), got B=" + std::to_string(max_batch) +
        " T=" + std::to_string(max_seq));
  }
  return std::unique_ptr<GptModel>(
      new GptModel(config, max_batch, max_seq, tp_comm, source, part));
}

void InitMegatronParamsRange(const GptConfig& config, const GptParamLayout& layout,
                             uint64_t seed, size_t begin, size_t end, float* out) {
  const float std_dev = config.init_method_std;
  const float scaled_std = std_dev / std::sqrt(2.0f * config.num_layers);
  const auto& tensors = layout.tensors();
  for (size_t k = 0; k < tensors.size(); ++k) {
    const ParamTensorInfo& t = tensors[k];
    const size_t b = std::max(begin, t.offset), e = std::min(end, t.offset + t.numel);
    if (b >= e) continue;
    float* p = out + (b - begin);  // element i of t is p[i - (b - t.offset)]
    const long long first = static_cast<long long>(b - t.offset);
    const long long n = static_cast<long long>(e - b);
    if (t.init == ParamInit::kZero || t.init == ParamInit::kOne) {
      const float value = t.init == ParamInit::kOne ? 1.0f : 0.0f;
      for (long long i = 0; i < n; ++i) p[i] = value;
      continue;
    }
    const float s = t.init == ParamInit::kScaledNormal ? scaled_std : std_dev;
    // One stream per tensor, keyed on its whole-model index: any pipeline stage (and the
    // last stage's copy of wte) draws the one-rank weights.
    const RngStream rng{seed + kInitKeyOffset, static_cast<uint64_t>(t.global_index)};
    // Keyed on the element's index in the whole tensor: a shard (TP or ZeRO-3) draws
    // its part of the one-rank weights.
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n; ++i) {
      p[i] = s * rng.normal(static_cast<uint64_t>(
                     layout.ToFullIndex(t, static_cast<size_t>(first + i))));
    }
  }
}

void InitMegatronParams(const GptConfig& config, const GptParamLayout& layout, uint64_t seed,
                        float* params) {
  InitMegatronParamsRange(config, layout, seed, 0, layout.num_params(), params);
}

void GptModel::InitMegatron(uint64_t seed) {
  if (whole_ != nullptr) InitMegatronParams(config_, layout_, seed, params_memory_.data());
}

void GptModel::ZeroGrad() {
  if (whole_ != nullptr) Zero(grads_memory_.data(), grads_memory_.size());
}

RngStream DropoutStream(uint64_t seed, uint64_t rng_step, int layer, DropoutSite site) {
  const uint64_t stream = (rng_step << 24) | (static_cast<uint64_t>((layer + 1) & 0xFFFF) << 8) |
                          static_cast<uint32_t>(site);
  return RngStream{seed, stream};
}

RngStream GptModel::DropoutRng(int layer, DropoutSite site) const {
  return DropoutStream(config_.seed, rng_step_, layer, site);
}

// --- forward -----------------------------------------------------------------

// Megatron's vocab_parallel_cross_entropy: the max, the sum of exponentials and the
// target logit are reduced over the tensor-parallel ranks; each keeps its columns.
coord::Status GptModel::VocabParallelLoss() {
  const int BT = B_ * T_, Vl = config_.padded_vocab_size() / tp_;
  const int vb = layout_.vocab_begin();
  const int valid = cpu::vocab_shard_valid(config_.vocab_size, vb, Vl);
  const size_t n = static_cast<size_t>(BT);
  float* gathered = ce_max_.data();  // (tp, BT): rank r's maxima in block r
  cpu::vocab_parallel_ce_max(gathered + n * tp_rank_, acts_.logits, BT, Vl, valid);
  RETURN_IF_ERROR(tp_comm_->AllGather(gathered, std::vector<size_t>(tp_, n),
                                      gpt_rank::dist::DataType::kFloat32));
  for (size_t i = 0; i < n; ++i) {
    for (int r = 1; r < tp_; ++r) gathered[i] = std::max(gathered[i], gathered[n * r + i]);
  }
  cpu::vocab_parallel_ce_exp(ce_sum_.data(), ce_target_.data(), acts_.logits, gathered,
                             targets_.data(), BT, Vl, valid, vb);
  RETURN_IF_ERROR(tp_comm_->AllReduceSum(ce_sum_.data(), n));
  RETURN_IF_ERROR(tp_comm_->AllReduceSum(ce_target_.data(), n));
  cpu::vocab_parallel_ce_finish(acts_.losses, acts_.logits, ce_sum_.data(), ce_target_.data(),
                                gathered, BT, Vl, valid);
  return coord::Status::Ok();
}

const float* GptModel::output_activation() const {
  const size_t BTC = static_cast<size_t>(B_) * T_ * config_.hidden_size;
  return acts_.residual + layers_.size() * BTC;
}

coord::StatusOr<float> GptModel::Forward(const int* inputs, const int* targets, int B, int T,
                                         const StepOptions& options,
                                         const float* input_activation) {
  if (B <= 0 || T <= 0 || B > max_batch_ || T > max_seq_) {
    return coord::InvalidArgument("GptModel::Forward: batch (B=" + std::to_string(B) +
                                  ", T=" + std::to_string(T) + ") outside the allocated (" +
                                  std::to_string(max_batch_) + ", " + std::to_string(max_seq_) +
                                  ")");
  }
  const int V = config_.vocab_size, BT = B * T;
  for (int i = 0; i < BT; ++i) {
    if (inputs[i] < 0 || inputs[i] >= V || targets[i] < 0 || targets[i] >= V) {
      return coord::InvalidArgument("GptModel::Forward: token " + std::to_string(i) + " (input " +
                                    std::to_string(inputs[i]) + ", target " +
                                    std::to_string(targets[i]) + ") outside the vocabulary [0, " +
                                    std::to_string(V) + ")");
    }
  }
  RETURN_IF_ERROR(TakeTokenOptions(options, B, T));
  B_ = B;
  T_ = T;
  training_ = options.training;
  rng_step_ = options.rng_step;
  inputs_.assign(inputs, inputs + BT);
  targets_.assign(targets, targets + BT);
  acts_ =
      ActivationViews(acts_memory_.data(), PartConfig(), B, T, config_.checkpoint_activations, tp_,
                      head_);

  const int C = config_.hidden_size, L = static_cast<int>(layers_.size());
  const int Vl = config_.padded_vocab_size() / tp_;  // this rank's rows of wte
  const size_t BTC = static_cast<size_t>(BT) * C;
  constexpr Module kEmbedding{ModuleKind::kEmbedding, -1}, kHead{ModuleKind::kHead, -1};
  if (!embedding_) {
    if (input_activation == nullptr) {
      return coord::InvalidArgument("GptModel::Forward: a part without the embedding needs its "
                                    "input activation");
    }
    std::memcpy(acts_.residual, input_activation, BTC * sizeof(float));
  } else {
    ASSIGN_OR_RETURN(const ModuleView emb, source_->Acquire(kEmbedding, Pass::kForward));
    if (tp_comm_ == nullptr) {
      cpu::encoder_forward(acts_.residual, inputs, emb.params.wte, emb.params.wpe, B, T, C);
    } else {  // exact: one rank contributes each row, the others zeros
      cpu::vocab_parallel_embedding_forward(acts_.residual, inputs, emb.params.wte,
                                            layout_.vocab_begin(), Vl, B, T, C);
      RETURN_IF_ERROR(TpAllReduce(acts_.residual, BTC));
      if (emb.params.wpe != nullptr) {
        cpu::position_embedding_add(acts_.residual, emb.params.wpe, B, T, C);
      }
    }
    RETURN_IF_ERROR(source_->Release(kEmbedding, Pass::kForward));
    if (training_ && config_.hidden_dropout > 0.0f) {
      cpu::dropout_forward(acts_.residual, acts_.residual, BTC, config_.hidden_dropout,
                           DropoutRng(-1, DropoutSite::kEmbedding), RowElems());
    }
  }
  // i: the layer's slot in this part's activations; l: its index in the whole model
  // (its parameters and dropout streams).
  for (int i = 0; i < L; ++i) {
    const int l = layers_[static_cast<size_t>(i)];
    const LayerActivations& a = acts_.layers[config_.checkpoint_activations ? 0 : i];
    const Module layer{ModuleKind::kLayer, l};
    ASSIGN_OR_RETURN(const ModuleView v, source_->Acquire(layer, Pass::kForward));
    RETURN_IF_ERROR(
        LayerForward(l, v.params.layer, a, acts_.residual + i * BTC, acts_.residual + (i + 1) * BTC));
    RETURN_IF_ERROR(source_->Release(layer, Pass::kForward));
  }
  if (!head_) {
    have_forward_ = true;
    return 0.0f;
  }
  ASSIGN_OR_RETURN(const ModuleView head, source_->Acquire(kHead, Pass::kForward));
  NormForward(acts_.lnf, acts_.lnf_mean, acts_.lnf_rstd, acts_.residual + L * BTC, head.params.lnfw,
              head.params.lnfb);
  cpu::matmul_forward(acts_.logits, acts_.lnf, head.params.lm_head(), nullptr, BT, C, Vl);
  RETURN_IF_ERROR(source_->Release(kHead, Pass::kForward));
  if (tp_comm_ == nullptr) {
    cpu::softmax_cross_entropy_forward(acts_.losses, acts_.logits, targets, BT, V, Vl);
  } else {
    RETURN_IF_ERROR(VocabParallelLoss());
  }
  double sum = 0.0;  // in token order: deterministic
  have_forward_ = true;
  if (!loss_weights_.empty()) {
    for (int i = 0; i < BT; ++i) sum += static_cast<double>(acts_.losses[i]) * loss_weights_[i];
    return static_cast<float>(sum);
  }
  for (int i = 0; i < BT; ++i) sum += acts_.losses[i];
  return static_cast<float>(sum / BT);
}

coord::Status GptModel::TakeTokenOptions(const StepOptions& options, int B, int T) {
  const size_t BT = static_cast<size_t>(B) * T;
  loss_weights_.clear();
  positions_.clear();
  kv_begin_.clear();
  if (options.loss_weights != nullptr) {
    loss_weights_.assign(options.loss_weights, options.loss_weights + BT);
  }
  if (options.position_ids != nullptr) {
    if (!config_.rope()) {
      return coord::InvalidArgument("GptModel::Forward: position ids need position_embedding_type "
                                    "\"rope\" (learned positions are always 0..T-1)");
    }
    for (size_t i = 0; i < BT; ++i) {
      if (options.position_ids[i] < 0 || options.position_ids[i] >= max_seq_) {
        return coord::InvalidArgument("GptModel::Forward: position id " +
                                      std::to_string(options.position_ids[i]) + " of token " +
                                      std::to_string(i) + " outside [0, " +
                                      std::to_string(max_seq_) + ")");
      }
    }
    positions_.assign(options.position_ids, options.position_ids + BT);
  }
  if (options.segment_ids != nullptr) {  // a token's first key: where its run of ids began
    kv_begin_.resize(BT);
    for (int b = 0; b < B; ++b) {
      const int* seg = options.segment_ids + static_cast<size_t>(b) * T;
      int* begin = kv_begin_.data() + static_cast<size_t>(b) * T;
      for (int t = 0; t < T; ++t) begin[t] = t > 0 && seg[t] == seg[t - 1] ? begin[t - 1] : t;
    }
  }
  return coord::Status::Ok();
}

// --- backward ---------------------------------------------------------------

// The loss (loss_scale x mean over the B x T tokens, or x the weighted sum), the LM
// head and the final LayerNorm: leaves d/d(output of the last layer) in
// grad_acts_.dresidual.
coord::Status GptModel::HeadBackward(float loss_scale) {
  const int BT = B_ * T_, C = config_.hidden_size, L = static_cast<int>(layers_.size());
  const int V = config_.vocab_size, Vl = config_.padded_vocab_size() / tp_;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const GptGradActivations& d = grad_acts_;
  const bool weighted = !loss_weights_.empty();
  // Weighted: d(loss)/d(CE_i) = loss_scale w_i, applied to each row below.
  const float dloss = weighted ? loss_scale : loss_scale / BT;
  if (tp_comm_ == nullptr) {
    cpu::softmax_cross_entropy_backward(acts_.logits, targets_.data(), BT, V, Vl, dloss);
  } else {
    cpu::vocab_parallel_ce_backward(acts_.logits, targets_.data(), BT, Vl,
                                    cpu::vocab_shard_valid(V, layout_.vocab_begin(), Vl),
                                    layout_.vocab_begin(), dloss);
  }
  if (weighted) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; ++i) {
      float* row = acts_.logits + static_cast<size_t>(i) * Vl;  // (Vl,) dlogits of token i
      const float w = loss_weights_[static_cast<size_t>(i)];
      for (int v = 0; v < Vl; ++v) row[v] *= w;
    }
  }
  constexpr Module kHead{ModuleKind::kHead, -1};
  ASSIGN_OR_RETURN(const ModuleView head, source_->Acquire(kHead, Pass::kBackward));
  Zero(d.dbtc, BTC);  // d(lnf)
  cpu::matmul_backward(d.dbtc, head.grads.lm_head(), nullptr, acts_.logits, acts_.lnf,
                       head.params.lm_head(), BT, C, Vl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc, BTC));
  Zero(d.dresidual, BTC);
  NormBackward(d.dresidual, head.grads.lnfw, head.grads.lnfb, d.dbtc, acts_.residual + L * BTC,
               head.params.lnfw, acts_.lnf_mean, acts_.lnf_rstd);
  return source_->Release(kHead, Pass::kBackward);
}

coord::Status GptModel::Backward(float loss_scale, const GradsReadyFn& grads_ready,
                                const float* output_grad) {
  if (!have_forward_) {
    return coord::FailedPrecondition("GptModel::Backward without a preceding Forward");
  }
  have_forward_ = false;  // probs are overwritten with dlogits below
  std::vector<float>& grad_memory = grad_scratch_ != nullptr ? *grad_scratch_ : grad_acts_memory_;
  const size_t grad_floats = GradActivationFloats(config_, max_batch_, max_seq_, tp_);
  if (grad_memory.size() < grad_floats) grad_memory.assign(grad_floats, 0.0f);
  const int B = B_, T = T_, BT = B * T, C = config_.hidden_size;
  const int L = static_cast<int>(layers_.size());
  const int Vl = config_.padded_vocab_size() / tp_;
  const size_t BTC = static_cast<size_t>(BT) * C;
  grad_acts_ = GradActivationViews(grad_memory.data(), config_, B, T, tp_);
  const GptGradActivations& d = grad_acts_;
  constexpr Module kEmbedding{ModuleKind::kEmbedding, -1};
  if (head_) {
    RETURN_IF_ERROR(HeadBackward(loss_scale));
    if (grads_ready && L > 0) grads_ready(layout_.layer_end(layers_.back()));
  } else if (output_grad == nullptr) {
    return coord::InvalidArgument("GptModel::Backward: a part without the head needs the "
                                  "gradient of its output");
  } else {
    std::memcpy(d.dresidual, output_grad, BTC * sizeof(float));
  }
  for (int i = L - 1; i >= 0; --i) {
    const int l = layers_[static_cast<size_t>(i)];
    const float* in = acts_.residual + i * BTC;
    const Module layer{ModuleKind::kLayer, l};
    ASSIGN_OR_RETURN(ModuleView v, source_->Acquire(layer, Pass::kBackward));
    if (config_.checkpoint_activations) {
      // Recompute layer l's activations from its saved input (writes the same
      // bits to residual[l+1] again, which backward no longer needs).
      RETURN_IF_ERROR(
          LayerForward(l, v.params.layer, acts_.layers[0], in, acts_.residual + (i + 1) * BTC));
      RETURN_IF_ERROR(LayerBackward(l, v.params.layer, v.grads.layer, acts_.layers[0], in));
    } else {
      RETURN_IF_ERROR(LayerBackward(l, v.params.layer, v.grads.layer, acts_.layers[i], in));
    }
    RETURN_IF_ERROR(source_->Release(layer, Pass::kBackward));
    if (grads_ready) grads_ready(layout_.layer_begin(l));
  }
  if (!embedding_) return coord::Status::Ok();  // input_grad() goes to the previous stage
  if (training_ && config_.hidden_dropout > 0.0f) {
    cpu::dropout_backward(d.dresidual, d.dresidual, BTC, config_.hidden_dropout,
                          DropoutRng(-1, DropoutSite::kEmbedding), RowElems());
  }
  ASSIGN_OR_RETURN(const ModuleView emb, source_->Acquire(kEmbedding, Pass::kGradsOnly));
  if (tp_comm_ == nullptr) {
    cpu::encoder_backward(emb.grads.wte, emb.grads.wpe, d.dresidual, inputs_.data(), B, T, C);
  } else {
    cpu::vocab_parallel_embedding_backward(emb.grads.wte, emb.grads.wpe, d.dresidual,
                                           inputs_.data(), layout_.vocab_begin(), Vl, B, T, C);
  }
  RETURN_IF_ERROR(source_->Release(kEmbedding, Pass::kGradsOnly));
  if (grads_ready) grads_ready(0);
  return coord::Status::Ok();
}

}  // namespace trainer
