// GPT-2 model hyper-parameters with Megatron's argument names (--num-layers,
// --hidden-size, ...), as they appear under "model" in a job spec. Plain data; the
// checks live in ValidateGptConfig (gpt_params.h).
#pragma once

#include <cstdint>

namespace trainer {

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
  float layernorm_epsilon = 1e-5f;
  bool checkpoint_activations = false;  // keep layer inputs only; recompute in backward
  uint64_t seed = 1234;                 // init and dropout streams

  int head_size() const { return hidden_size / num_attention_heads; }
  // Vp: V rounded up to a multiple of make_vocab_size_divisible_by * tp
  // (megatron/tokenizer/tokenizer.py: _vocab_size_with_padding).
  int padded_vocab_size() const {
    int multiple = make_vocab_size_divisible_by * tensor_model_parallel_size;
    if (multiple <= 0) return vocab_size;
    return (vocab_size + multiple - 1) / multiple * multiple;
  }
};

}  // namespace trainer
