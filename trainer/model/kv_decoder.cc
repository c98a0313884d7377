// KvDecoder (see kv_decoder.h): per layer, as GptModel::LayerForward without dropout,
//   x1 = x  + attn_proj(attention_decode(rope(qkv(ln1(x))), cache))
//   y  = x1 + fc_proj(act(fc(ln2(x1))))
// then the final norm and the LM head on the last row only.
#include "trainer/model/kv_decoder.h"

#include <algorithm>
#include <string>

#include "trainer/kernels/cpu/attention_decode.h"
#include "trainer/kernels/cpu/encoder.h"
#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cpu/layernorm.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/matvec.h"
#include "trainer/kernels/cpu/residual.h"
#include "trainer/kernels/cpu/rmsnorm.h"
#include "trainer/kernels/cpu/rope.h"
#include "trainer/kernels/cpu/softmax_cross_entropy.h"
#include "trainer/kernels/cpu/swiglu.h"

namespace trainer {

namespace cpu = kernels::cpu;

namespace {

cpu::QkvLayout LayoutOf(const GptConfig& c) {
  return cpu::QkvLayout::Make(c.num_attention_heads * c.head_size(), c.num_attention_heads,
                              c.group_query_attention ? c.num_query_groups : 0);
}

}  // namespace

coord::StatusOr<std::unique_ptr<KvDecoder>> KvDecoder::Create(const GptConfig& config,
                                                              const float* params,
                                                              size_t num_params, int capacity) {
  ASSIGN_OR_RETURN(KvCache cache, KvCache::Create(config, capacity));  // validates config
  if (params == nullptr || num_params != GptParamLayout(config).num_params()) {
    return coord::InvalidArgument("KvDecoder: " + std::to_string(num_params) +
                                  " parameters for a model of " +
                                  std::to_string(GptParamLayout(config).num_params()));
  }
  return std::unique_ptr<KvDecoder>(new KvDecoder(config, params, std::move(cache)));
}

KvDecoder::KvDecoder(const GptConfig& config, const float* params, KvCache cache)
    : config_(config),
      layout_(config),
      // Views hands out float*; the decoder only reads them.
      params_(layout_.Views(const_cast<float*>(params))),
      cache_(std::move(cache)) {
  const size_t R = static_cast<size_t>(std::min(kPrefillChunk, cache_.capacity()));
  const size_t C = static_cast<size_t>(config.hidden_size);
  x_.resize(R * C);
  ln_.resize(R * C);
  mean_.resize(R);
  rstd_.resize(R);
  qkv_.resize(R * config.qkv_rows());
  atty_.resize(R * config.num_attention_heads * config.head_size());
  proj_.resize(R * C);
  fch_.resize(R * config.fc_rows());
  act_.resize(R * config.ffn_size());
  probs_.resize(static_cast<size_t>(config.padded_vocab_size()));
  pos_.resize(R);
  ids_.resize(R);
  if (config.rope()) {
    const size_t half = static_cast<size_t>(config.head_size() / 2);
    rope_cos_.resize(static_cast<size_t>(cache_.capacity()) * half);
    rope_sin_.resize(rope_cos_.size());
    cpu::rope_table(rope_cos_.data(), rope_sin_.data(), cache_.capacity(), config.head_size(),
                    config.rotary_base);
  }
}

void KvDecoder::Norm(float* out, const float* in, const float* w, const float* b, int n) {
  const int C = config_.hidden_size;
  if (config_.rms_norm()) {
    cpu::rmsnorm_forward(out, rstd_.data(), in, w, n, C, config_.layernorm_epsilon);
  } else {
    cpu::layernorm_forward(out, mean_.data(), rstd_.data(), in, w, b, n, C,
                           config_.layernorm_epsilon);
  }
}

void KvDecoder::Linear(float* out, const float* in, const float* w, const float* b, int n, int C,
                       int OC) {
  // A few rows: split the output features (all cores on one row); else the rows.
  if (n < 16) {
    cpu::matvec_forward(out, in, w, b, n, C, OC);
  } else {
    cpu::matmul_forward(out, in, w, b, n, C, OC);
  }
}

void KvDecoder::LayerForward(int l, int n, int pos0) {
  const LayerParams& w = params_.layers[static_cast<size_t>(l)];
  const int C = config_.hidden_size, ATT = config_.num_attention_heads * config_.head_size();
  const int QKV = config_.qkv_rows(), FC = config_.fc_rows(), F = config_.ffn_size();
  const cpu::QkvLayout layout = LayoutOf(config_);
  const size_t nC = static_cast<size_t>(n) * C;

  Norm(ln_.data(), x_.data(), w.ln1w, w.ln1b, n);
  Linear(qkv_.data(), ln_.data(), w.qkvw, w.qkvb, n, C, QKV);
  if (config_.rope()) {
    cpu::rope_forward(qkv_.data(), rope_cos_.data(), rope_sin_.data(), 1, n, layout, pos_.data());
  }
  // Append first: each new token attends to itself and the new tokens before it.
  cpu::kv_cache_append(cache_.k(l), cache_.v(l), qkv_.data(), n, pos0, cache_.capacity(), layout);
  cpu::attention_decode_forward(atty_.data(), qkv_.data(), cache_.k(l), cache_.v(l), n, pos0,
                                cache_.capacity(), layout);
  Linear(proj_.data(), atty_.data(), w.attprojw, w.attprojb, n, ATT, C);
  cpu::residual_forward(x_.data(), x_.data(), proj_.data(), nC);

  Norm(ln_.data(), x_.data(), w.ln2w, w.ln2b, n);
  Linear(fch_.data(), ln_.data(), w.fcw, w.fcb, n, C, FC);
  if (config_.swiglu) {
    cpu::swiglu_forward(act_.data(), fch_.data(), n, F);
  } else {
    cpu::gelu_forward(act_.data(), fch_.data(), n * F);
  }
  Linear(proj_.data(), act_.data(), w.fcprojw, w.fcprojb, n, F, C);
  cpu::residual_forward(x_.data(), x_.data(), proj_.data(), nC);
}

coord::StatusOr<const float*> KvDecoder::Forward(const int32_t* tokens, int n) {
  const int V = config_.vocab_size, Vp = config_.padded_vocab_size(), C = config_.hidden_size;
  if (n <= 0 || n > cache_.capacity() - cache_.length()) {
    return coord::InvalidArgument("KvDecoder: " + std::to_string(n) + " tokens at position " +
                                  std::to_string(cache_.length()) + " of a cache of " +
                                  std::to_string(cache_.capacity()) + " positions");
  }
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= V) {
      return coord::InvalidArgument("KvDecoder: token " + std::to_string(tokens[i]) +
                                    " outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  const int R = static_cast<int>(pos_.size());
  int rows = 0;  // rows of x_ from the last chunk: the last token is row rows - 1
  for (int done = 0; done < n; done += rows) {
    rows = std::min(R, n - done);
    const int pos0 = cache_.length();
    for (int i = 0; i < rows; ++i) {
      ids_[static_cast<size_t>(i)] = tokens[done + i];
      pos_[static_cast<size_t>(i)] = pos0 + i;
    }
    // wpe rows are positions: the chunk's start at row pos0.
    const float* wpe =
        params_.wpe != nullptr ? params_.wpe + static_cast<size_t>(pos0) * C : nullptr;
    cpu::encoder_forward(x_.data(), ids_.data(), params_.wte, wpe, 1, rows, C);
    for (int l = 0; l < config_.num_layers; ++l) LayerForward(l, rows, pos0);
    cache_.Advance(rows);
  }
  const float* last = x_.data() + static_cast<size_t>(rows - 1) * C;  // (C,)
  Norm(ln_.data(), last, params_.lnfw, params_.lnfb, 1);
  const float* head = params_.output != nullptr ? params_.output : params_.wte;  // (Vp, C)
  cpu::matvec_forward(probs_.data(), ln_.data(), head, nullptr, 1, C, Vp);
  float loss = 0.0f;  // unused: the kernel's softmax is the probabilities GptModel gives
  const int target = 0;
  cpu::softmax_cross_entropy_forward(&loss, probs_.data(), &target, 1, V, Vp);
  return static_cast<const float*>(probs_.data());
}

}  // namespace trainer
