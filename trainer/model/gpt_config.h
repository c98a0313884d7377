// Model hyper-parameters with Megatron's argument names (--num-layers, --hidden-size,
// --normalization, --swiglu, ...), as they appear under "model" in a job spec. Plain
// data; the checks live in ValidateGptConfig (gpt_params.h).
//
// Two families share it. GPT-2 (the defaults): LayerNorm with bias, learned absolute
// positions (wpe), GELU MLP of 4C, biases everywhere, LM head tied to wte. Llama /
// Qwen2 (Megatron's flags): RMSNorm, rotary embeddings (HF's rotate_half pairing),
// grouped-query attention, SwiGLU MLP, no linear biases (Qwen2 keeps q/k/v biases),
// tied or untied output layer.
#pragma once

#include <cstdint>

namespace trainer {

enum class Normalization { kLayerNorm, kRMSNorm };             // model.normalization
enum class PositionEmbedding { kLearnedAbsolute, kRope };      // model.position_embedding_type

struct GptConfig {
  int num_layers = 12;                 // L
  int hidden_size = 768;               // C
  int num_attention_heads = 12;        // NH; head size HS = C / NH
  int seq_length = 1024;               // T (the longest sequence trained on)
  int max_position_embeddings = 1024;  // maxT, rows of wpe; T <= maxT
  int vocab_size = 50257;              // V, the tokenizer's vocabulary
  int make_vocab_size_divisible_by = 128;
  int tensor_model_parallel_size = 1;  // only pads the vocab here (Megatron pads to div * tp)
  float hidden_dropout = 0.1f;         // embedding, attention-out and MLP-out dropout
  float attention_dropout = 0.1f;      // dropout on the attention probabilities
  float init_method_std = 0.02f;
  float layernorm_epsilon = 1e-5f;      // Megatron's norm_epsilon (either norm)
  bool checkpoint_activations = false;  // keep layer inputs only; recompute in backward
  uint64_t seed = 1234;                 // init and dropout streams

  // --- the Llama / Qwen2 family (defaults: GPT-2) ---
  Normalization normalization = Normalization::kLayerNorm;  // RMSNorm: weight only, no bias
  PositionEmbedding position_embedding_type = PositionEmbedding::kLearnedAbsolute;
  float rotary_base = 10000.0f;        // RoPE theta: inv_freq_i = base^(-2i/HS)
  bool swiglu = false;                 // MLP down(silu(gate(x)) * up(x)); fc is [gate | up]
  bool group_query_attention = false;  // KV heads = num_query_groups (else NH)
  int num_query_groups = 1;            // KV heads with group_query_attention
  bool untie_embeddings_and_output_weights = false;  // a separate output_layer (Vp, C)
  bool add_bias_linear = true;         // false: Megatron's --disable-bias-linear
  bool add_qkv_bias = false;           // q/k/v biases even without linear biases (Qwen2)
  int ffn_hidden_size = 0;             // F; 0: Megatron's default (ffn_size())

  int head_size() const { return hidden_size / num_attention_heads; }
  // KV heads (the query groups): query head h uses KV head h / (NH / KV).
  int kv_heads() const { return group_query_attention ? num_query_groups : num_attention_heads; }
  // Rows of the fused QKV projection: NH query heads and KV key and value heads.
  int qkv_rows() const { return (num_attention_heads + 2 * kv_heads()) * head_size(); }
  // F, the MLP's inner size: ffn_hidden_size, else Megatron's default: 4C, or with
  // SwiGLU int(4C * 2/3 / 64) * 64 (megatron/training/arguments.py).
  int ffn_size() const {
    if (ffn_hidden_size > 0) return ffn_hidden_size;
    return swiglu ? static_cast<int>((4.0 * hidden_size * 2.0 / 3.0) / 64.0) * 64
                  : 4 * hidden_size;
  }
  // Rows of the fc weight: F, or [gate | up] = 2F with SwiGLU.
  int fc_rows() const { return swiglu ? 2 * ffn_size() : ffn_size(); }
  bool rms_norm() const { return normalization == Normalization::kRMSNorm; }
  bool rope() const { return position_embedding_type == PositionEmbedding::kRope; }
  bool qkv_bias() const { return add_bias_linear || add_qkv_bias; }
  bool tied_output() const { return !untie_embeddings_and_output_weights; }
  // The GPT-2 architecture exactly (the CUDA backend knows only this one).
  bool is_gpt2() const {
    return !rms_norm() && !rope() && !swiglu && !group_query_attention && tied_output() &&
           add_bias_linear && ffn_size() == 4 * hidden_size;
  }
  // Vp: V rounded up to a multiple of make_vocab_size_divisible_by * tp
  // (megatron/tokenizer/tokenizer.py: _vocab_size_with_padding).
  int padded_vocab_size() const {
    int multiple = make_vocab_size_divisible_by * tensor_model_parallel_size;
    if (multiple <= 0) return vocab_size;
    return (vocab_size + multiple - 1) / multiple * multiple;
  }
};

}  // namespace trainer
