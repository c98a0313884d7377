// Hugging Face Llama / Qwen2 import and export, and the dispatch by family (see
// hf_llama.h).
#include "trainer/checkpoint/hf_llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/model/gpt_params.h"

namespace trainer {

namespace {

using coord::InvalidArgument;
using nlohmann::json;

// --- config.json -------------------------------------------------------------

struct HfArch {
  const char* model_type;
  const char* architecture;
};
constexpr HfArch kLlama{"llama", "LlamaForCausalLM"};
constexpr HfArch kQwen2{"qwen2", "Qwen2ForCausalLM"};

// Keys of config.json gpt-rank reads (or knows to be harmless: token ids, dtype and
// bookkeeping); any other key is refused by name.
const std::set<std::string> kCommonKeys = {
    "architectures",        "model_type",          "hidden_size",         "intermediate_size",
    "num_hidden_layers",    "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
    "vocab_size",           "rms_norm_eps",        "rope_theta",          "rope_scaling",
    "tie_word_embeddings",  "hidden_act",          "attention_dropout",   "initializer_range",
    "bos_token_id",         "eos_token_id",        "pad_token_id",        "torch_dtype",
    "transformers_version", "use_cache",           "_name_or_path"};
const std::set<std::string> kQwen2Keys = {"use_sliding_window", "sliding_window",
                                          "max_window_layers"};
const std::set<std::string> kLlamaKeys = {"attention_bias", "mlp_bias", "pretraining_tp",
                                          "head_dim"};

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  coord::Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument(path_ + ": " + key + ": " + what + " (nothing loaded)");
  }
  coord::Status Int(const char* key, int* out, bool required = true) const {
    if (!j_.contains(key) || j_[key].is_null()) {
      return required ? Error(key, "missing (expected an integer)") : coord::Status::Ok();
    }
    if (!j_[key].is_number_integer() || j_[key].get<int64_t>() <= 0 ||
        j_[key].get<int64_t>() > (1ll << 30)) {
      return Error(key, "expected a positive integer, got " + j_[key].dump());
    }
    *out = j_[key].get<int>();
    return coord::Status::Ok();
  }
  coord::Status Float(const char* key, float* out) const {
    if (!j_.contains(key) || j_[key].is_null()) return coord::Status::Ok();
    // Past float's range the conversion is undefined; no real value comes near 1e30.
    if (!j_[key].is_number() || !(std::fabs(j_[key].get<double>()) <= 1e30)) {
      return Error(key, "expected a number, got " + j_[key].dump());
    }
    *out = static_cast<float>(j_[key].get<double>());
    return coord::Status::Ok();
  }
  coord::Status String(const char* key, std::string* out) const {
    if (!j_.contains(key) || j_[key].is_null()) return coord::Status::Ok();
    if (!j_[key].is_string()) return Error(key, "expected a string, got " + j_[key].dump());
    *out = j_[key].get<std::string>();
    return coord::Status::Ok();
  }
  coord::Status Bool(const char* key, bool* out) const {
    if (!j_.contains(key) || j_[key].is_null()) return coord::Status::Ok();
    if (!j_[key].is_boolean()) return Error(key, "expected true or false, got " + j_[key].dump());
    *out = j_[key].get<bool>();
    return coord::Status::Ok();
  }

 private:
  const json& j_;
  std::string path_;
};

coord::StatusOr<json> ReadConfigJson(const std::string& dir, std::string* path) {
  *path = coord::JoinPath(dir, "config.json");
  ASSIGN_OR_RETURN(const std::string text, coord::ReadFile(*path));
  // The shared parser bounds the nesting (values are dump()ed into messages, recursively).
  auto j = coord::ParseJson(text, *path);
  if (!j.ok() || !j->is_object()) {
    return InvalidArgument(*path + ": not a JSON object" +
                           (j.ok() ? "" : " (" + j.status().message() + ")"));
  }
  return std::move(*j);
}

coord::Status CheckArchitecture(const json& j, const ConfigReader& r, const HfArch& arch) {
  if (!j.contains("architectures")) return coord::Status::Ok();
  const json& a = j["architectures"];
  if (!a.is_array() || a.size() != 1 || !a[0].is_string() ||
      a[0].get<std::string>() != arch.architecture) {
    return r.Error("architectures", a.dump() + " is not supported for model_type " +
                                        arch.model_type + " (gpt-rank trains " + arch.architecture +
                                        ")");
  }
  return coord::Status::Ok();
}

coord::Status CheckRopeScaling(const json& j, const ConfigReader& r) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return coord::Status::Ok();
  const json& s = j["rope_scaling"];
  if (!s.is_object()) return r.Error("rope_scaling", "expected null or an object");
  std::string type = "(none given)";
  for (const char* k : {"rope_type", "type"}) {
    if (s.contains(k) && s[k].is_string()) type = s[k].get<std::string>();
  }
  if (type == "default") return coord::Status::Ok();
  return r.Error("rope_scaling", "type \"" + type +
                                     "\" is not supported (gpt-rank implements unscaled RoPE: "
                                     "rope_scaling null or {\"rope_type\": \"default\"})");
}

}  // namespace

coord::StatusOr<GptConfig> ReadHfLlamaConfig(const std::string& dir) {
  std::string path;
  ASSIGN_OR_RETURN(const json j, ReadConfigJson(dir, &path));
  const ConfigReader r(j, path);
  std::string type;
  RETURN_IF_ERROR(r.String("model_type", &type));
  const bool qwen2 = type == kQwen2.model_type;
  if (!qwen2 && type != kLlama.model_type) {
    return r.Error("model_type", "\"" + type + "\" is not supported (gpt2, llama, qwen2)");
  }
  const HfArch& arch = qwen2 ? kQwen2 : kLlama;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (kCommonKeys.count(it.key()) || (qwen2 ? kQwen2Keys : kLlamaKeys).count(it.key())) continue;
    return r.Error(it.key(), std::string("key not supported for model_type ") + arch.model_type);
  }
  RETURN_IF_ERROR(CheckArchitecture(j, r, arch));
  RETURN_IF_ERROR(CheckRopeScaling(j, r));
  GptConfig c;
  c.normalization = Normalization::kRMSNorm;
  c.position_embedding_type = PositionEmbedding::kRope;
  c.swiglu = true;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.layernorm_epsilon = 1e-6f;
  RETURN_IF_ERROR(r.Int("num_hidden_layers", &c.num_layers));
  RETURN_IF_ERROR(r.Int("hidden_size", &c.hidden_size));
  RETURN_IF_ERROR(r.Int("num_attention_heads", &c.num_attention_heads));
  RETURN_IF_ERROR(r.Int("intermediate_size", &c.ffn_hidden_size));
  RETURN_IF_ERROR(r.Int("max_position_embeddings", &c.max_position_embeddings));
  RETURN_IF_ERROR(r.Int("vocab_size", &c.vocab_size));
  int kv = c.num_attention_heads;
  RETURN_IF_ERROR(r.Int("num_key_value_heads", &kv, /*required=*/false));
  c.group_query_attention = kv != c.num_attention_heads;
  c.num_query_groups = c.group_query_attention ? kv : 1;
  RETURN_IF_ERROR(r.Float("rms_norm_eps", &c.layernorm_epsilon));
  RETURN_IF_ERROR(r.Float("rope_theta", &c.rotary_base));
  RETURN_IF_ERROR(r.Float("attention_dropout", &c.attention_dropout));
  RETURN_IF_ERROR(r.Float("initializer_range", &c.init_method_std));
  bool tie = false;  // LlamaConfig's and Qwen2Config's default
  RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &tie));
  c.untie_embeddings_and_output_weights = !tie;
  std::string act = "silu";
  RETURN_IF_ERROR(r.String("hidden_act", &act));
  if (act != "silu") {
    return r.Error("hidden_act", "\"" + act + "\" is not supported (SwiGLU needs \"silu\")");
  }
  c.add_bias_linear = false;
  if (qwen2) {
    c.add_qkv_bias = true;  // Qwen2Attention: q/k/v with bias, o_proj without
    bool sliding = false;
    RETURN_IF_ERROR(r.Bool("use_sliding_window", &sliding));
    if (sliding)
      return r.Error("use_sliding_window", "true is not supported (full attention only)");
  } else {
    bool attention_bias = false, mlp_bias = false;
    RETURN_IF_ERROR(r.Bool("attention_bias", &attention_bias));
    RETURN_IF_ERROR(r.Bool("mlp_bias", &mlp_bias));
    if (attention_bias != mlp_bias) {
      return r.Error("attention_bias",
                     "differs from mlp_bias: gpt-rank has biases on every "
                     "linear layer (disable_bias_linear false) or on none");
    }
    c.add_bias_linear = attention_bias;
    int tp = 1;
    RETURN_IF_ERROR(r.Int("pretraining_tp", &tp, /*required=*/false));
    if (tp != 1) return r.Error("pretraining_tp", "only 1 is supported");
    int head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
    RETURN_IF_ERROR(r.Int("head_dim", &head_dim, /*required=*/false));
    if (int64_t{head_dim} * c.num_attention_heads != c.hidden_size) {  // 2^30 * 2^30: int64
      return r.Error("head_dim", std::to_string(head_dim) +
                                     " is not hidden_size / num_attention_heads (gpt-rank's head "
                                     "size)");
    }
  }
  c.seq_length = c.max_position_embeddings;
  RETURN_IF_ERROR(ValidateGptConfig(c).WithContext(path));
  return c;
}

// --- tensors -----------------------------------------------------------------

namespace {

// Where an HF tensor's rows go in one of our tensors: a contiguous block starting at
// row0, or scattered into the grouped QKV layout (GQA).
enum class Placement { kRows, kGroupedQ, kGroupedK, kGroupedV };

struct HfMapped {
  std::string name;
  std::vector<int64_t> shape;  // HF's
  int global_index = 0;        // our tensor
  Placement place = Placement::kRows;
  int64_t row0 = 0;
};

// Our row of HF row r.
int64_t OurRow(const GptConfig& c, const HfMapped& m, int64_t r) {
  const int64_t HS = c.head_size(), R = c.num_attention_heads / std::max(1, c.kv_heads());
  const int64_t group_rows = (R + 2) * HS, i = r % HS;
  switch (m.place) {
    case Placement::kRows:
      return m.row0 + r;
    case Placement::kGroupedQ: {  // q head h = r / HS in group h / R
      const int64_t h = r / HS;
      return h / R * group_rows + h % R * HS + i;
    }
    case Placement::kGroupedK:
      return r / HS * group_rows + R * HS + i;
    case Placement::kGroupedV:
      return r / HS * group_rows + (R + 1) * HS + i;
  }
  return r;
}

bool IsQwen2(const GptConfig& c) { return c.add_qkv_bias && !c.add_bias_linear; }

coord::Status CheckFamily(const GptConfig& c, const char* what) {
  if (c.rms_norm() && c.rope() && c.swiglu) return coord::Status::Ok();
  return InvalidArgument(std::string(what) +
                         ": a Llama/Qwen2 checkpoint needs model.normalization RMSNorm, "
                         "position_embedding_type rope and swiglu");
}

std::vector<HfMapped> HfTensors(const GptConfig& c, const GptParamLayout& layout) {
  const int64_t C = c.hidden_size, V = c.vocab_size, F = c.ffn_size();
  const int64_t HS = c.head_size(), NH = c.num_attention_heads, KV = c.kv_heads();
  const bool grouped = c.group_query_attention;
  std::vector<HfMapped> out;
  out.push_back({"model.embed_tokens.weight", {V, C}, 0, Placement::kRows, 0});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto slot = [&](LayerSlot s) { return layout.layer_tensor_index(l, s); };
    out.push_back({p + "input_layernorm.weight", {C}, slot(kLn1Weight), Placement::kRows, 0});
    const char* parts[3] = {"q_proj", "k_proj", "v_proj"};
    const int64_t rows[3] = {NH * HS, KV * HS, KV * HS};
    const int64_t row0[3] = {0, NH * HS, (NH + KV) * HS};
    const Placement place[3] = {Placement::kGroupedQ, Placement::kGroupedK, Placement::kGroupedV};
    for (int k = 0; k < 3; ++k) {
      const Placement pl = grouped ? place[k] : Placement::kRows;
      out.push_back(
          {p + "self_attn." + parts[k] + ".weight", {rows[k], C}, slot(kQkvWeight), pl, row0[k]});
      if (c.qkv_bias()) {
        out.push_back(
            {p + "self_attn." + parts[k] + ".bias", {rows[k]}, slot(kQkvBias), pl, row0[k]});
      }
    }
    out.push_back(
        {p + "self_attn.o_proj.weight", {C, NH * HS}, slot(kAttnProjWeight), Placement::kRows, 0});
    if (c.add_bias_linear) {
      out.push_back({p + "self_attn.o_proj.bias", {C}, slot(kAttnProjBias), Placement::kRows, 0});
    }
    out.push_back(
        {p + "post_attention_layernorm.weight", {C}, slot(kLn2Weight), Placement::kRows, 0});
    out.push_back({p + "mlp.gate_proj.weight", {F, C}, slot(kFcWeight), Placement::kRows, 0});
    out.push_back({p + "mlp.up_proj.weight", {F, C}, slot(kFcWeight), Placement::kRows, F});
    out.push_back({p + "mlp.down_proj.weight", {C, F}, slot(kFcProjWeight), Placement::kRows, 0});
    if (c.add_bias_linear) {
      out.push_back({p + "mlp.gate_proj.bias", {F}, slot(kFcBias), Placement::kRows, 0});
      out.push_back({p + "mlp.up_proj.bias", {F}, slot(kFcBias), Placement::kRows, F});
      out.push_back({p + "mlp.down_proj.bias", {C}, slot(kFcProjBias), Placement::kRows, 0});
    }
  }
  out.push_back({"model.norm.weight", {C}, layout.lnf_weight_index(), Placement::kRows, 0});
  if (!c.tied_output()) {
    out.push_back({"lm_head.weight", {V, C}, layout.output_index(), Placement::kRows, 0});
  }
  return out;
}

size_t Numel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

// Tensors a checkpoint may hold that gpt-rank does not load: the tied head's copy
// and the rotary buffers older transformers saved.
bool Ignorable(const GptConfig& c, const std::string& name) {
  if (c.tied_output() && name == "lm_head.weight") return true;
  const std::string tail = "rotary_emb.inv_freq";
  return name.size() >= tail.size() &&
         name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

coord::Status ImportHfLlama(const std::string& dir, const GptConfig& config, float* params) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  RETURN_IF_ERROR(CheckFamily(config, "ImportHfLlama"));
  ASSIGN_OR_RETURN(const HfCheckpoint ckpt, HfCheckpoint::Open(dir));
  const GptParamLayout layout(config);
  const std::vector<HfMapped> mapped = HfTensors(config, layout);
  // Everything is checked before the first tensor is read.
  std::set<std::string> expected;
  for (const HfMapped& m : mapped) {
    RETURN_IF_ERROR(ckpt.CheckShape(m.name, m.shape).WithContext("nothing loaded"));
    expected.insert(m.name);
  }
  for (const std::string& name : ckpt.Names()) {
    if (expected.count(name) || Ignorable(config, name)) continue;
    return InvalidArgument(dir + ": tensor " + name +
                           " is not part of this model (config.json's architecture); nothing "
                           "loaded");
  }
  std::vector<float> scratch;  // one grouped q/k/v tensor at a time
  for (const HfMapped& m : mapped) {
    const ParamTensorInfo& t =
        layout.tensors()[static_cast<size_t>(layout.LocalIndex(m.global_index))];
    const size_t cols = t.full_shape.size() == 2 ? static_cast<size_t>(t.full_shape[1]) : 1;
    float* dst = params + t.offset;
    if (m.place == Placement::kRows) {
      RETURN_IF_ERROR(ckpt.ReadF32(m.name, m.shape, dst + static_cast<size_t>(m.row0) * cols));
      continue;
    }
    scratch.resize(Numel(m.shape));
    RETURN_IF_ERROR(ckpt.ReadF32(m.name, m.shape, scratch.data()));
    for (int64_t r = 0; r < m.shape[0]; ++r) {
      std::memcpy(dst + static_cast<size_t>(OurRow(config, m, r)) * cols,
                  scratch.data() + static_cast<size_t>(r) * cols, cols * sizeof(float));
    }
  }
  // Padded vocabulary rows V..Vp-1 never appear in the loss; keep them at zero.
  const size_t C = config.hidden_size, V = config.vocab_size, Vp = config.padded_vocab_size();
  for (int g : {0, layout.output_index()}) {
    if (g < 0) continue;
    const ParamTensorInfo& t = layout.tensors()[static_cast<size_t>(layout.LocalIndex(g))];
    std::memset(params + t.offset + V * C, 0, (Vp - V) * C * sizeof(float));
  }
  return coord::Status::Ok();
}

coord::Status ExportHfLlama(const std::string& dir, const GptConfig& config, const float* params,
                            const HfExportOptions& options) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  RETURN_IF_ERROR(CheckFamily(config, "export-hf"));
  const GptParamLayout layout(config);
  const std::vector<HfMapped> mapped = HfTensors(config, layout);
  std::vector<SafetensorsSpec> specs;
  for (const HfMapped& m : mapped) specs.push_back({m.name, m.shape});
  auto fill = [&](size_t k, float* out) {
    const HfMapped& m = mapped[k];
    const ParamTensorInfo& t =
        layout.tensors()[static_cast<size_t>(layout.LocalIndex(m.global_index))];
    const size_t cols = t.full_shape.size() == 2 ? static_cast<size_t>(t.full_shape[1]) : 1;
    for (int64_t r = 0; r < m.shape[0]; ++r) {
      std::memcpy(out + static_cast<size_t>(r) * cols,
                  params + t.offset + static_cast<size_t>(OurRow(config, m, r)) * cols,
                  cols * sizeof(float));
    }
    return coord::Status::Ok();
  };
  RETURN_IF_ERROR(WriteHfShards(dir, specs, options.dtype, fill, options.max_shard_bytes));
  const bool qwen2 = IsQwen2(config);
  const HfArch& arch = qwen2 ? kQwen2 : kLlama;
  const char* dtype = options.dtype == SafetensorsDtype::kBF16  ? "bfloat16"
                      : options.dtype == SafetensorsDtype::kF16 ? "float16"
                                                                : "float32";
  json cfg = {{"architectures", {arch.architecture}},
              {"model_type", arch.model_type},
              {"hidden_size", config.hidden_size},
              {"intermediate_size", config.ffn_size()},
              {"num_hidden_layers", config.num_layers},
              {"num_attention_heads", config.num_attention_heads},
              {"num_key_value_heads", config.kv_heads()},
              {"max_position_embeddings", config.max_position_embeddings},
              {"vocab_size", config.vocab_size},
              {"rms_norm_eps", config.layernorm_epsilon},
              {"rope_theta", config.rotary_base},
              {"rope_scaling", nullptr},
              {"tie_word_embeddings", config.tied_output()},
              {"hidden_act", "silu"},
              {"attention_dropout", config.attention_dropout},
              {"initializer_range", config.init_method_std},
              {"torch_dtype", dtype},
              {"use_cache", true}};
  if (qwen2) {
    cfg["use_sliding_window"] = false;
    cfg["sliding_window"] = config.max_position_embeddings;
    cfg["max_window_layers"] = config.num_layers;
  } else {
    cfg["attention_bias"] = config.add_bias_linear;
    cfg["mlp_bias"] = config.add_bias_linear;
    cfg["pretraining_tp"] = 1;
  }
  return coord::WriteFileAtomic(coord::JoinPath(dir, "config.json"), cfg.dump(2) + "\n");
}

// --- either family -----------------------------------------------------------

coord::StatusOr<GptConfig> ReadHfModelConfig(const std::string& dir) {
  std::string path;
  ASSIGN_OR_RETURN(const json j, ReadConfigJson(dir, &path));
  std::string type = "gpt2";
  RETURN_IF_ERROR(ConfigReader(j, path).String("model_type", &type));
  if (type == "gpt2") return ReadHfGpt2Config(dir);
  return ReadHfLlamaConfig(dir);  // refuses other model types by name
}

coord::Status ImportHfModel(const std::string& dir, const GptConfig& config, float* params) {
  return config.is_gpt2() ? ImportHfGpt2(dir, config, params) : ImportHfLlama(dir, config, params);
}

coord::Status ExportHfModel(const std::string& dir, const GptConfig& config, const float* params,
                            const HfExportOptions& options) {
  if (!config.is_gpt2()) return ExportHfLlama(dir, config, params, options);
  if (options.dtype != SafetensorsDtype::kF32) {
    return InvalidArgument("export-hf: GPT-2 checkpoints are written in fp32 only (--dtype fp32)");
  }
  return ExportHfGpt2(dir, config, params);
}

}  // namespace trainer
