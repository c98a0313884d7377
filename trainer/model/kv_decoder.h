// Inference forward with a KV cache, for both families (GPT-2 and Llama / Qwen2):
// Forward(tokens, n) runs n new tokens at the next positions through every layer,
// appending their keys and values to the cache, and returns the next-token
// probabilities after the last one. The prompt goes in once (the prefill, in chunks of
// kPrefillChunk tokens so scratch stays small), then one token per decode step; each
// step costs one row of matmuls plus attention over the cached positions, instead of
// the whole prefix as GptModel::Forward would.
//
// Same kernels as GptModel's forward without dropout (norms, RoPE at the tokens'
// positions, SwiGLU/GELU) except attention_decode_forward for attention and
// matvec_forward for one-row products; so greedy generation gives GptModel's tokens
// (rounding aside: only the matmul split differs). Rank 0, the whole model (tp 1), fp32.
// Not thread-safe; the kernels use OpenMP inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"
#include "trainer/model/gpt_params.h"
#include "trainer/model/kv_cache.h"

namespace trainer {

class KvDecoder {
 public:
  static constexpr int kPrefillChunk = 64;  // tokens per prefill pass (scratch rows)

  // params: the whole model's flat buffer (GptParamLayout(config), num_params floats),
  // not owned, read only, must outlive the decoder. capacity: positions the cache
  // holds (KvCache::Create's checks).
  static coord::StatusOr<std::unique_ptr<KvDecoder>> Create(const GptConfig& config,
                                                            const float* params, size_t num_params,
                                                            int capacity);

  // tokens (n,) ids in [0, V) at positions length() .. length()+n-1 (n >= 1, within
  // capacity). Returns the (Vp,) probabilities of the token after the last one
  // (columns >= V are 0), valid until the next call.
  coord::StatusOr<const float*> Forward(const int32_t* tokens, int n);
  int length() const { return cache_.length(); }
  int capacity() const { return cache_.capacity(); }
  void Reset() { cache_.Clear(); }

 private:
  KvDecoder(const GptConfig& config, const float* params, KvCache cache);
  // Rows [0, n) of x_ at positions pos0 .. through layer l (appends to its cache).
  void LayerForward(int l, int n, int pos0);
  void Norm(float* out, const float* in, const float* w, const float* b, int n);
  void Linear(float* out, const float* in, const float* w, const float* b, int n, int C, int OC);

  GptConfig config_;
  GptParamLayout layout_;
  GptParams params_;  // views of the caller's buffer (never written)
  KvCache cache_;
  // Scratch for up to R = min(kPrefillChunk, capacity) rows.
  std::vector<float> x_;                    // (R, C) residual stream
  std::vector<float> ln_;                   // (R, C) norm output
  std::vector<float> mean_;                 // (R,) LayerNorm's mean
  std::vector<float> rstd_;                 // (R,)
  std::vector<float> qkv_;                  // (R, QKV)
  std::vector<float> atty_;                 // (R, NH HS)
  std::vector<float> proj_;                 // (R, C) projection outputs
  std::vector<float> fch_;                  // (R, FC) fc output ([gate | up] with SwiGLU)
  std::vector<float> act_;                  // (R, F) GELU / SwiGLU output
  std::vector<float> probs_;                // (Vp,) LM head logits, then probabilities
  std::vector<int> pos_;                    // (R,) positions of the rows (RoPE)
  std::vector<int> ids_;                    // (R,) token ids of the rows
  std::vector<float> rope_cos_, rope_sin_;  // (capacity, HS/2), rope only
};

}  // namespace trainer
