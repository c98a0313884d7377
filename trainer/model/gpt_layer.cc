// One transformer layer's forward and backward on the CPU kernels (see gpt.h), for
// both families: the norm (LayerNorm or RMSNorm), the column-parallel QKV (+ RoPE on q
// and k), causal attention (grouped-query with num_query_groups), the row-parallel
// attention projection, the column-parallel fc, GELU or SwiGLU, the row-parallel fc
// projection; dropout and residuals around both halves. With tensor parallel, NHl /
// KVl heads, QKVl rows, FCl / Fl MLP columns are this rank's; (B, T, C) is whole.
#include <cstring>

#include "trainer/kernels/cpu/attention.h"
#include "trainer/kernels/cpu/dropout.h"
#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cpu/layernorm.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/residual.h"
#include "trainer/kernels/cpu/rmsnorm.h"
#include "trainer/kernels/cpu/rope.h"
#include "trainer/kernels/cpu/swiglu.h"
#include "trainer/model/gpt.h"

namespace trainer {

namespace cpu = kernels::cpu;

namespace {

void Zero(float* p, size_t n) { std::memset(p, 0, n * sizeof(float)); }

}  // namespace

coord::Status GptModel::TpAllReduce(float* data, size_t count) {
  if (tp_comm_ == nullptr) return coord::Status::Ok();
  return tp_comm_->AllReduceSum(data, count);
}

coord::Status GptModel::RowParallelOutput(float* out, const float* bias) {
  if (tp_comm_ == nullptr) return coord::Status::Ok();
  const int BT = B_ * T_, C = config_.hidden_size;
  RETURN_IF_ERROR(tp_comm_->AllReduceSum(out, static_cast<size_t>(BT) * C));
  if (bias != nullptr) cpu::bias_add_forward(out, bias, BT, C);
  return coord::Status::Ok();
}

void GptModel::NormForward(float* out, float* mean, float* rstd, const float* in, const float* w,
                           const float* b) const {
  const int BT = B_ * T_, C = config_.hidden_size;
  if (config_.rms_norm()) {
    cpu::rmsnorm_forward(out, rstd, in, w, BT, C, config_.layernorm_epsilon);
  } else {
    cpu::layernorm_forward(out, mean, rstd, in, w, b, BT, C, config_.layernorm_epsilon);
  }
}

void GptModel::NormBackward(float* din, float* dw, float* db, const float* dout, const float* in,
                            const float* w, const float* mean, const float* rstd) const {
  const int BT = B_ * T_, C = config_.hidden_size;
  if (config_.rms_norm()) {
    cpu::rmsnorm_backward(din, dw, dout, in, w, rstd, BT, C);
  } else {
    cpu::layernorm_backward(din, dw, db, dout, in, w, mean, rstd, BT, C);
  }
}

// --- forward -----------------------------------------------------------------

coord::Status GptModel::LayerForward(int l, const LayerParams& w, const LayerActivations& a,
                                     const float* in, float* out) {
  const int B = B_, T = T_, C = config_.hidden_size;
  const int NHl = config_.num_attention_heads / tp_, HS = config_.head_size();
  const int ATTl = NHl * HS;                  // attention output width (C/tp here)
  const int QKVl = config_.qkv_rows() / tp_;  // this rank's q, k, v rows
  const int FCl = config_.fc_rows() / tp_, Fl = config_.ffn_size() / tp_;
  // kv_heads 0: the plain [q | k | v] layout; else the grouped one with this rank's groups.
  const int KVl = config_.group_query_attention ? config_.num_query_groups / tp_ : 0;
  const int BT = B * T;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const float p_hidden = training_ ? config_.hidden_dropout : 0.0f;
  const float p_attn = training_ ? config_.attention_dropout : 0.0f;
  const bool one_rank = tp_comm_ == nullptr;
  float* proj = acts_.scratch;  // (B,T,C) projection output, then its dropout

  NormForward(a.ln1, a.ln1_mean, a.ln1_rstd, in, w.ln1w, w.ln1b);
  cpu::matmul_forward(a.qkv, a.ln1, w.qkvw, w.qkvb, BT, C, QKVl);
  if (config_.rope()) {
    cpu::rope_forward(a.qkv, rope_cos_.data(), rope_sin_.data(), B, T,
                      cpu::QkvLayout::Make(ATTl, NHl, KVl), positions());
  }
  cpu::attention_forward(a.atty, a.att, a.qkv, B, T, ATTl, NHl, p_attn,
                         DropoutRng(l, DropoutSite::kAttentionProbs), tp_rank_ * NHl, KVl,
                         kv_begin());
  cpu::matmul_forward(proj, a.atty, w.attprojw, one_rank ? w.attprojb : nullptr, BT, ATTl, C);
  RETURN_IF_ERROR(RowParallelOutput(proj, w.attprojb));
  if (p_hidden > 0.0f) {
    cpu::dropout_forward(proj, proj, BTC, p_hidden, DropoutRng(l, DropoutSite::kAttentionOut),
                         RowElems());
  }
  cpu::residual_forward(a.residual2, in, proj, BTC);

  NormForward(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, w.ln2w, w.ln2b);
  cpu::matmul_forward(a.fch, a.ln2, w.fcw, w.fcb, BT, C, FCl);
  if (config_.swiglu) {
    cpu::swiglu_forward(a.fch_gelu, a.fch, BT, Fl);
  } else {
    cpu::gelu_forward(a.fch_gelu, a.fch, BT * Fl);
  }
  cpu::matmul_forward(proj, a.fch_gelu, w.fcprojw, one_rank ? w.fcprojb : nullptr, BT, Fl, C);
  RETURN_IF_ERROR(RowParallelOutput(proj, w.fcprojb));
  if (p_hidden > 0.0f) {
    cpu::dropout_forward(proj, proj, BTC, p_hidden, DropoutRng(l, DropoutSite::kMlpOut),
                         RowElems());
  }
  cpu::residual_forward(out, a.residual2, proj, BTC);
  return coord::Status::Ok();
}

// --- backward ----------------------------------------------------------------

// On entry grad_acts_.dresidual holds d(loss)/d(out of layer l); on exit
// d/d(in).
coord::Status GptModel::LayerBackward(int l, const LayerParams& w, LayerParams& g,
                                      const LayerActivations& a, const float* in) {
  const int B = B_, T = T_, C = config_.hidden_size;
  const int NHl = config_.num_attention_heads / tp_, HS = config_.head_size();
  const int ATTl = NHl * HS, QKVl = config_.qkv_rows() / tp_;
  const int FCl = config_.fc_rows() / tp_, Fl = config_.ffn_size() / tp_;
  const int KVl = config_.group_query_attention ? config_.num_query_groups / tp_ : 0;
  const int BT = B * T;
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
  Zero(d.dfch_gelu, static_cast<size_t>(BT) * Fl);
  cpu::matmul_backward(d.dfch_gelu, g.fcprojw, g.fcprojb, dproj, a.fch_gelu, w.fcprojw, BT, Fl, C);
  Zero(d.dfch, static_cast<size_t>(BT) * FCl);
  if (config_.swiglu) {
    cpu::swiglu_backward(d.dfch, a.fch, d.dfch_gelu, BT, Fl);
  } else {
    cpu::gelu_backward(d.dfch, a.fch, d.dfch_gelu, BT * Fl);
  }
  Zero(d.dbtc2, BTC);
  cpu::matmul_backward(d.dbtc2, g.fcw, g.fcb, d.dfch, a.ln2, w.fcw, BT, C, FCl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc2, BTC));  // column-parallel input: sum the ranks' parts
  NormBackward(d.dresidual, g.ln2w, g.ln2b, d.dbtc2, a.residual2, w.ln2w, a.ln2_mean, a.ln2_rstd);

  // residual2 = in + dropout(attn_proj(...)): dresidual now is d/d(residual2).
  dproj = d.dresidual;
  if (p_hidden > 0.0f) {
    cpu::dropout_backward(d.dbtc, d.dresidual, BTC, p_hidden,
                          DropoutRng(l, DropoutSite::kAttentionOut), RowElems());
    dproj = d.dbtc;
  }
  Zero(d.dbtc2, static_cast<size_t>(BT) * ATTl);  // d(atty), this rank's heads
  cpu::matmul_backward(d.dbtc2, g.attprojw, g.attprojb, dproj, a.atty, w.attprojw, BT, ATTl, C);
  Zero(d.dqkv, static_cast<size_t>(BT) * QKVl);
  cpu::attention_backward(d.dqkv, d.dbtc2, a.qkv, a.att, B, T, ATTl, NHl, p_attn,
                          DropoutRng(l, DropoutSite::kAttentionProbs), tp_rank_ * NHl, KVl,
                          kv_begin());
  if (config_.rope()) {  // d/d(rotated q, k) -> d/d(projection output)
    cpu::rope_backward(d.dqkv, rope_cos_.data(), rope_sin_.data(), B, T,
                       cpu::QkvLayout::Make(ATTl, NHl, KVl), positions());
  }
  Zero(d.dbtc, BTC);  // d(ln1)
  cpu::matmul_backward(d.dbtc, g.qkvw, g.qkvb, d.dqkv, a.ln1, w.qkvw, BT, C, QKVl);
  RETURN_IF_ERROR(TpAllReduce(d.dbtc, BTC));
  NormBackward(d.dresidual, g.ln1w, g.ln1b, d.dbtc, in, w.ln1w, a.ln1_mean, a.ln1_rstd);
  return coord::Status::Ok();
}

}  // namespace trainer
