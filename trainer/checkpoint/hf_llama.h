// Hugging Face Llama (LlamaForCausalLM) and Qwen2 (Qwen2ForCausalLM) checkpoints in and
// out, and the dispatch between them and GPT-2 (safetensors.h) for import-hf /
// export-hf. config.json maps to the model section (Megatron's names):
//   hidden_size, num_hidden_layers, num_attention_heads   -> hidden_size, num_layers, ...
//   num_key_value_heads (< heads)                          -> group_query_attention,
//                                                            num_query_groups
//   intermediate_size -> ffn_hidden_size (swiglu)   rms_norm_eps -> norm_epsilon (RMSNorm)
//   rope_theta -> rotary_base (rope)                tie_word_embeddings false -> untie_...
//   Qwen2: q/k/v biases (add_qkv_bias, disable_bias_linear); Llama: attention_bias and
//   mlp_bias both false (disable_bias_linear) or both true
// and anything else is refused by name (an unknown key, rope_scaling other than none /
// "default", a sliding window, another hidden_act), before any tensor is read.
// Tensors (nn.Linear layout (out, in), ours too, so nothing is transposed):
//   model.embed_tokens.weight (V, C)        -> wte rows [0, V) (rows up to Vp are zero)
//   model.layers.i.input_layernorm.weight   -> ln1_weight
//   self_attn.{q,k,v}_proj.{weight,bias}    -> qkv_weight / qkv_bias: [q | k | v], or
//                                              with GQA per group [q heads | k_g | v_g]
//   self_attn.o_proj.weight                 -> attn_proj_weight
//   post_attention_layernorm.weight         -> ln2_weight
//   mlp.gate_proj / mlp.up_proj .weight     -> fc_weight rows [0, F) / [F, 2F)
//   mlp.down_proj.weight                    -> fc_proj_weight
//   model.norm.weight                       -> lnf_weight
//   lm_head.weight (untied models only)     -> output_layer rows [0, V)
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// config.json of a Llama or Qwen2 model -> the architecture (vocab_size = the
// embedding's rows, which may exceed the tokenizer's; dropouts from attention_dropout,
// hidden 0; seq_length = max_position_embeddings). Errors name the file and key.
coord::StatusOr<GptConfig> ReadHfLlamaConfig(const std::string& dir);
// dir's safetensors (sharded or not, any float dtype) into the whole-model flat buffer
// of `config` (tp 1 layout; padded vocabulary rows zeroed). Every tensor's presence and
// shape is checked first: on an error nothing has been written to params.
coord::Status ImportHfLlama(const std::string& dir, const GptConfig& config, float* params);

struct HfExportOptions {
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  uint64_t max_shard_bytes = 5000000000ull;  // HF's default max_shard_size "5GB"
};
// config.json + safetensors of the whole-model flat buffer; Qwen2 when the model has
// q/k/v biases only, else Llama.
coord::Status ExportHfLlama(const std::string& dir, const GptConfig& config, const float* params,
                            const HfExportOptions& options = {});

// --- either family -----------------------------------------------------------
// By config.json's model_type: "gpt2" (ReadHfGpt2Config), "llama" or "qwen2".
coord::StatusOr<GptConfig> ReadHfModelConfig(const std::string& dir);
// GPT-2 or the family, by the config's architecture.
coord::Status ImportHfModel(const std::string& dir, const GptConfig& config, float* params);
coord::Status ExportHfModel(const std::string& dir, const GptConfig& config, const float* params,
                            const HfExportOptions& options = {});

}  // namespace trainer
