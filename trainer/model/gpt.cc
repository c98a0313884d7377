// GPT-2 forward/backward on the CPU kernels (see gpt.h). Per layer, exactly
// Megatron's ParallelTransformerLayer with pre-LN:
//   x1 = x  + dropout(attn_proj(attention(ln1(x))))
//   y  = x1 + dropout(fc_proj(gelu(fc(ln2(x1)))))
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
#include "trainer/kernels/cpu/attention.h"
#include "trainer/kernels/cpu/dropout.h"
#include "trainer/kernels/cpu/encoder.h"
#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cpu/layernorm.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/residual.h"
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
      t.wte = views.wte;
      t.lnfw = views.lnfw;
      t.lnfb = views.lnfb;
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
    const int tp = tp_comm->size();
    if (config.num_attention_heads % tp != 0 || config.padded_vocab_size() % tp != 0) {
      return coord::InvalidArgument(
          "tensor parallel size " + std::to_string(tp) + " must divide model.num_attention_heads (" +
          std::to_string(config.num_attention_heads) + ") and the padded vocabulary (" +
          std::to_string(config.padded_vocab_size()) +
          "; model.tensor_model_parallel_size pads it to a multiple of "
          "make_vocab_size_divisible_by x tp)");
    }
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

coord::Status GptModel::TpAllReduce(float* data, size_t count) {
  if (tp_comm_ == nullptr) return coord::Status::Ok();
  return tp_comm_->AllReduceSum(data, count);
}

coord::Status GptModel::RowParallelOutput(float* out, const float* bias) {
  if (tp_comm_ == nullptr) return coord::Status::Ok();
  const int BT = B_ * T_, C = config_.hidden_size;
  RETURN_IF_ERROR(tp_comm_->AllReduceSum(out, static_cast<size_t>(BT) * C));
  cpu::bias_add_forward(out, bias, BT, C);
  return coord::Status::Ok();
}

// With tensor parallel, Cl = C/tp and NHl = NH/tp are this rank's part of the heads
// and 4*Cl its part of the MLP; everything (B, T, C) is whole on every rank.
coord::Status GptModel::LayerForward(int l, const LayerParams& w, const LayerActivations& a,
                                     const float* in, float* out) {
  const int B = B_, T = T_, C = config_.hidden_size, Cl = C / tp_;
  const int NHl = config_.num_attention_heads / tp_;
  const int BT = B * T;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const float p_hidden = training_ ? config_.hidden_dropout : 0.0f;
  const float p_attn = training_ ? config_.attention_dropout : 0.0f;
  const bool one_rank = tp_comm_ == nullptr;
  float* proj = acts_.scratch;  // (B,T,C) projection output, then its dropout

  cpu::layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, in, w.ln1w, w.ln1b, BT, C,
                         config_.layernorm_epsilon);
  cpu::matmul_forward(a.qkv, a.ln1, w.qkvw, w.qkvb, BT, C, 3 * Cl);
  cpu::attention_forward(a.atty, a.att, a.qkv, B, T, Cl, NHl, p_attn,
                         DropoutRng(l, DropoutSite::kAttentionProbs), tp_rank_ * NHl);
  cpu::matmul_forward(proj, a.atty, w.attprojw, one_rank ? w.attprojb : nullptr, BT, Cl, C);
  RETURN_IF_ERROR(RowParallelOutput(proj, w.attprojb));
  if (p_hidden > 0.0f) {
    cpu::dropout_forward(proj, proj, BTC, p_hidden, DropoutRng(l, DropoutSite::kAttentionOut),
                         RowElems());
  }
  cpu::residual_forward(a.residual2, in, proj, BTC);

  cpu::layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, w.ln2w, w.ln2b, BT, C,
                         config_.layernorm_epsilon);
  cpu::matmul_forward(a.fch, a.ln2, w.fcw, w.fcb, BT, C, 4 * Cl);
  cpu::gelu_forward(a.fch_gelu, a.fch, BT * 4 * Cl);
  cpu::matmul_forward(proj, a.fch_gelu, w.fcprojw, one_rank ? w.fcprojb : nullptr, BT, 4 * Cl, C);
  RETURN_IF_ERROR(RowParallelOutput(proj, w.fcprojb));
  if (p_hidden > 0.0f) {
    cpu::dropout_forward(proj, proj, BTC, p_hidden, DropoutRng(l, DropoutSite::kMlpOut),
                         RowElems());
  }
  cpu::residual_forward(out, a.residual2, proj, BTC);
  return coord::Status::Ok();
}

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
      cpu::position_embedding_add(acts_.residual, emb.params.wpe, B, T, C);
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
  cpu::layernorm_forward(acts_.lnf, acts_.lnf_mean, acts_.lnf_rstd, acts_.residual + L * BTC,
                         head.params.lnfw, head.params.lnfb, BT, C, config_.layernorm_epsilon);
  cpu::matmul_forward(acts_.logits, acts_.lnf, head.params.wte, nullptr, BT, C, Vl);
  RETURN_IF_ERROR(source_->Release(kHead, Pass::kForward));
  if (tp_comm_ == nullptr) {
    cpu::softmax_cross_entropy_forward(acts_.losses, acts_.logits, targets, BT, V, Vl);
  } else {
    RETURN_IF_ERROR(VocabParallelLoss());
  }
  double sum = 0.0;  // in token order: deterministic
  for (int i = 0; i < BT; ++i) sum += acts_.losses[i];
  have_forward_ = true;
  return static_cast<float>(sum / BT);
}

// --- backward ----------------------------------------------------------------

// On entry grad_acts_.dresidual holds d(loss)/d(out of layer l); on exit
// d/d(in).
coord::Status GptModel::LayerBackward(int l, const LayerParams& w, LayerParams& g,
                                      const LayerActivations& a, const float* in) {
  const int B = B_, T = T_, C = config_.hidden_size, Cl = C / tp_;
  const int NHl = config_.num_attention_heads / tp_;
  const int BT = B * T;
  const size_t BTCl = static_cast<size_t>(BT) * Cl;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const GptGradActivations& d = grad_acts_;
  const float p_hidden = training_ ? config_.hidden_dropout : 0.0f;
  const float p_attn = training_ ? config_.attention_dropout : 0.0f;

  // out = residual2 + dropout(fc_proj(...)): dresidual flows to residual2
  // unchanged.
  const float* dproj = d.dresidual;
  if (p_hidden > 0.0f) {
    cpu::dropout_backward(d.dbtc, d.dresidual, BTC, p_hidden, DropoutRng(l, DropoutSite::kMlpOut),
                          RowElems());
    dproj = d.dbtc;
  }
  // The replicated fc_proj bias gets the same gradient on every tensor-parallel rank.
  Zero(d.dfch_gelu, BTCl * 4);
  cpu::matmul_backward(d.dfch_gelu, g.fcprojw, g.fcprojb, dproj, a.fch_gelu, w.fcprojw, BT, 4 * Cl,
                       C);
  Zero(d.dfch, BTCl * 4);
  cpu::gelu_backward(d.dfch, a.fch, d.dfch_gelu, BT * 4 * Cl);
  Zero(d.dbtc2, BTC);
  cpu::matmul_backward(d.dbtc2, g.fcw, g.fcb, d.dfch, a.ln2, w.fcw, BT, C, 4 * Cl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc2, BTC));  // column-parallel input: sum the ranks' parts
  cpu::layernorm_backward(d.dresidual, g.ln2w, g.ln2b, d.dbtc2, a.residual2, w.ln2w, a.ln2_mean,
                          a.ln2_rstd, BT, C);

  // residual2 = in + dropout(attn_proj(...)): dresidual now is d/d(residual2).
  dproj = d.dresidual;
  if (p_hidden > 0.0f) {
    cpu::dropout_backward(d.dbtc, d.dresidual, BTC, p_hidden,
                          DropoutRng(l, DropoutSite::kAttentionOut), RowElems());
    dproj = d.dbtc;
  }
  Zero(d.dbtc2, BTCl);  // d(atty), this rank's heads
  cpu::matmul_backward(d.dbtc2, g.attprojw, g.attprojb, dproj, a.atty, w.attprojw, BT, Cl, C);
  Zero(d.dqkv, BTCl * 3);
  cpu::attention_backward(d.dqkv, d.dbtc2, a.qkv, a.att, B, T, Cl, NHl, p_attn,
                          DropoutRng(l, DropoutSite::kAttentionProbs), tp_rank_ * NHl);
  Zero(d.dbtc, BTC);  // d(ln1)
  cpu::matmul_backward(d.dbtc, g.qkvw, g.qkvb, d.dqkv, a.ln1, w.qkvw, BT, C, 3 * Cl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc, BTC));
  cpu::layernorm_backward(d.dresidual, g.ln1w, g.ln1b, d.dbtc, in, w.ln1w, a.ln1_mean, a.ln1_rstd,
                          BT, C);
  return coord::Status::Ok();
}

// The loss (loss_scale x mean over the B x T tokens), the LM head and the final
// LayerNorm: leaves d/d(output of the last layer) in grad_acts_.dresidual.
coord::Status GptModel::HeadBackward(float loss_scale) {
  const int BT = B_ * T_, C = config_.hidden_size, L = static_cast<int>(layers_.size());
  const int V = config_.vocab_size, Vl = config_.padded_vocab_size() / tp_;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const GptGradActivations& d = grad_acts_;
  if (tp_comm_ == nullptr) {
    cpu::softmax_cross_entropy_backward(acts_.logits, targets_.data(), BT, V, Vl, loss_scale / BT);
  } else {
    cpu::vocab_parallel_ce_backward(acts_.logits, targets_.data(), BT, Vl,
                                    cpu::vocab_shard_valid(V, layout_.vocab_begin(), Vl),
                                    layout_.vocab_begin(), loss_scale / BT);
  }
  constexpr Module kHead{ModuleKind::kHead, -1};
  ASSIGN_OR_RETURN(const ModuleView head, source_->Acquire(kHead, Pass::kBackward));
  Zero(d.dbtc, BTC);  // d(lnf)
  cpu::matmul_backward(d.dbtc, head.grads.wte, nullptr, acts_.logits, acts_.lnf, head.params.wte,
                       BT, C, Vl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc, BTC));
  Zero(d.dresidual, BTC);
  cpu::layernorm_backward(d.dresidual, head.grads.lnfw, head.grads.lnfb, d.dbtc,
                          acts_.residual + L * BTC, head.params.lnfw, acts_.lnf_mean,
                          acts_.lnf_rstd, BT, C);
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
