// Job-config parsing for checkpoint consumers (see checkpoint_model.h).
#include "trainer/checkpoint/checkpoint_model.h"

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/checkpoint/tp_checkpoint.h"
#include "trainer/model/gpt_params.h"

namespace trainer {

namespace {

using nlohmann::json;

// "origin: model.hidden_size: expected an integer that fits int32, got 1e+300"
coord::Status Expected(const std::string& origin, const char* sname, const char* key,
                       const char* what, const json& got) {
  return coord::InvalidArgument(origin + ": " + sname + "." + key + ": expected " + what +
                                ", got " + (got.is_number() ? got.dump() : got.type_name()));
}

coord::Status GetInt(const json& section, const char* sname, const char* key,
                     const std::string& origin, int* out) {
  if (!section.contains(key)) return coord::Status::Ok();
  const json& v = section[key];
  if (!v.is_number_integer()) return Expected(origin, sname, key, "an integer", v);
  try {
    *out = coord::JsonGet<int>(v);  // 2^40 does not fit: an error, not a truncation
  } catch (const json::exception&) {
    return Expected(origin, sname, key, "an integer that fits int32", v);
  }
  return coord::Status::Ok();
}

coord::Status GetFloat(const json& section, const char* sname, const char* key,
                       const std::string& origin, float* out) {
  if (!section.contains(key)) return coord::Status::Ok();
  const json& v = section[key];
  if (!v.is_number()) return Expected(origin, sname, key, "a number", v);
  try {
    *out = coord::JsonGet<float>(v);  // 1e300 would be inf (undefined behaviour in C++)
  } catch (const json::exception&) {
    return Expected(origin, sname, key, "a number that fits a float", v);
  }
  return coord::Status::Ok();
}

coord::Status GetBool(const json& section, const char* sname, const char* key,
                      const std::string& origin, bool* out) {
  if (!section.contains(key)) return coord::Status::Ok();
  if (!section[key].is_boolean())
    return Expected(origin, sname, key, "true or false", section[key]);
  *out = section[key].get<bool>();
  return coord::Status::Ok();
}

coord::StatusOr<std::string> GetString(const json& section, const char* sname, const char* key,
                                       const std::string& origin, const std::string& fallback) {
  if (!section.contains(key)) return fallback;
  if (!section[key].is_string()) return Expected(origin, sname, key, "a string", section[key]);
  return section[key].get<std::string>();
}

// The Llama / Qwen2 family's keys (the trainer's parser checks them; here they only
// rebuild the architecture a checkpoint was saved with).
coord::Status GetModelFamily(const json& m, const std::string& origin, GptConfig* c) {
  ASSIGN_OR_RETURN(const std::string norm, GetString(m, "model", "normalization", origin,
                                                     NormalizationName(c->normalization)));
  auto n = ParseNormalization(norm);
  if (!n.ok()) return n.status().WithContext(origin);
  c->normalization = *n;
  ASSIGN_OR_RETURN(const std::string pos,
                   GetString(m, "model", "position_embedding_type", origin,
                             PositionEmbeddingName(c->position_embedding_type)));
  auto p = ParsePositionEmbedding(pos);
  if (!p.ok()) return p.status().WithContext(origin);
  c->position_embedding_type = *p;
  RETURN_IF_ERROR(GetFloat(m, "model", "norm_epsilon", origin, &c->layernorm_epsilon));
  RETURN_IF_ERROR(GetBool(m, "model", "swiglu", origin, &c->swiglu));
  RETURN_IF_ERROR(GetFloat(m, "model", "rotary_base", origin, &c->rotary_base));
  RETURN_IF_ERROR(GetBool(m, "model", "group_query_attention", origin, &c->group_query_attention));
  RETURN_IF_ERROR(GetInt(m, "model", "num_query_groups", origin, &c->num_query_groups));
  RETURN_IF_ERROR(GetBool(m, "model", "untie_embeddings_and_output_weights", origin,
                          &c->untie_embeddings_and_output_weights));
  bool disable_bias = !c->add_bias_linear;
  RETURN_IF_ERROR(GetBool(m, "model", "disable_bias_linear", origin, &disable_bias));
  c->add_bias_linear = !disable_bias;
  RETURN_IF_ERROR(GetBool(m, "model", "add_qkv_bias", origin, &c->add_qkv_bias));
  return GetInt(m, "model", "ffn_hidden_size", origin, &c->ffn_hidden_size);
}

const json& Section(const json& j, const char* name) {
  static const json kEmpty = json::object();
  return j.contains(name) && j[name].is_object() ? j[name] : kEmpty;
}

}  // namespace

coord::StatusOr<JobModelConfig> ParseJobModelConfig(const std::string& config_json,
                                                    const std::string& origin) {
  // The shared parser: nesting bounded, 1e400 and invalid UTF-8 reported with line:column.
  ASSIGN_OR_RETURN(const json j, coord::ParseJson(config_json, origin));
  if (!j.is_object()) return coord::InvalidArgument(origin + ": config is not a JSON object");
  JobModelConfig out;
  GptConfig& c = out.model;
  const json& m = Section(j, "model");
  RETURN_IF_ERROR(GetInt(m, "model", "num_layers", origin, &c.num_layers));
  RETURN_IF_ERROR(GetInt(m, "model", "hidden_size", origin, &c.hidden_size));
  RETURN_IF_ERROR(GetInt(m, "model", "num_attention_heads", origin, &c.num_attention_heads));
  RETURN_IF_ERROR(GetInt(m, "model", "seq_length", origin, &c.seq_length));
  RETURN_IF_ERROR(
      GetInt(m, "model", "max_position_embeddings", origin, &c.max_position_embeddings));
  RETURN_IF_ERROR(
      GetInt(m, "model", "make_vocab_size_divisible_by", origin, &c.make_vocab_size_divisible_by));
  out.vocab_size_given = m.contains("vocab_size");
  RETURN_IF_ERROR(GetInt(m, "model", "vocab_size", origin, &c.vocab_size));
  RETURN_IF_ERROR(GetFloat(m, "model", "layernorm_epsilon", origin, &c.layernorm_epsilon));
  RETURN_IF_ERROR(GetFloat(m, "model", "hidden_dropout", origin, &c.hidden_dropout));
  RETURN_IF_ERROR(GetFloat(m, "model", "attention_dropout", origin, &c.attention_dropout));
  RETURN_IF_ERROR(GetFloat(m, "model", "init_method_std", origin, &c.init_method_std));
  RETURN_IF_ERROR(GetModelFamily(m, origin, &c));
  // Megatron pads the vocab to divisible_by * tp, so tp changes the parameter count.
  RETURN_IF_ERROR(GetInt(Section(j, "parallel"), "parallel", "tensor_model_parallel_size", origin,
                         &c.tensor_model_parallel_size));
  const json& d = Section(j, "data");
  if (d.contains("vocab_file") && d["vocab_file"].is_string()) out.vocab_file = d["vocab_file"];
  if (d.contains("merge_file") && d["merge_file"].is_string()) out.merge_file = d["merge_file"];
  if (d.contains("tokenizer_type") && d["tokenizer_type"].is_string()) {
    out.tokenizer_type = d["tokenizer_type"];
  }
  for (const char* key : {"tokenizer_file", "tokenizer_model"}) {
    if (d.contains(key) && d[key].is_string()) out.tokenizer_model = d[key];
  }
  const json& t = Section(j, "training");
  if (t.contains("seed") && t["seed"].is_number_unsigned()) out.seed = t["seed"].get<uint64_t>();
  return out;
}

coord::StatusOr<int> ReadVocabSize(const std::string& vocab_file) {
  ASSIGN_OR_RETURN(const json j, coord::LoadJsonFile(vocab_file));
  if (!j.is_object() || j.empty()) {
    return coord::InvalidArgument(vocab_file + ": not a JSON object of token -> id");
  }
  return static_cast<int>(j.size());
}

namespace {

// One iteration as the whole model: mp_rank_00 as saved, or (tensor or pipeline
// parallel) every shard put back together. The state is read first, so the shards are
// read once.
coord::StatusOr<LoadedCheckpoint> LoadWholeModel(const std::string& iter_dir) {
  ASSIGN_OR_RETURN(const TrainState state, LoadFirstShardState(iter_dir));
  const OptimizerRange none{0, 0, false};
  if (state.tensor_model_parallel_size == 1 && state.pipeline_model_parallel_size == 1) {
    return LoadCheckpoint(iter_dir, 0, none);
  }
  ASSIGN_OR_RETURN(JobModelConfig job,
                   ParseJobModelConfig(state.config_json, "checkpoint " + iter_dir));
  if (state.vocab_size <= 0) {
    return coord::FailedPrecondition("checkpoint " + iter_dir + " has " +
                                     std::to_string(state.tensor_model_parallel_size) +
                                     " tensor-parallel shards but no vocab_size in its state");
  }
  job.model.vocab_size = state.vocab_size;
  return LoadIterationForLayout(iter_dir, job.model, ModelLayout{}, none);
}

}  // namespace

coord::StatusOr<LoadedCheckpoint> LoadCheckpointForInference(const std::string& load_dir,
                                                             int64_t iteration) {
  if (iteration >= 0) {
    const std::string dir = CheckpointIterDir(load_dir, iteration);
    if (!coord::IsDirectory(dir)) {
      return coord::InvalidArgument("no checkpoint for iteration " + std::to_string(iteration) +
                                    ": " + dir + " does not exist");
    }
    return LoadWholeModel(dir);
  }
  if (!coord::IsDirectory(load_dir)) {
    return coord::InvalidArgument("checkpoint directory " + load_dir + " does not exist");
  }
  if (!HasCheckpoint(load_dir)) {
    return coord::InvalidArgument("no checkpoint in " + load_dir + " (no " + kLatestIterationFile +
                                  " and no complete iter_* directory)");
  }
  return LoadLatestWith(load_dir, LoadWholeModel);
}

coord::StatusOr<GptConfig> CheckpointModelConfig(const LoadedCheckpoint& ckpt,
                                                 const std::string& vocab_override,
                                                 const std::string& merge_override,
                                                 std::string* vocab_out, std::string* merge_out) {
  ASSIGN_OR_RETURN(JobModelConfig job,
                   ParseJobModelConfig(ckpt.state.config_json, "checkpoint " + ckpt.path));
  const std::string vocab = vocab_override.empty() ? job.vocab_file : vocab_override;
  const std::string merges = merge_override.empty() ? job.merge_file : merge_override;
  if (vocab_out != nullptr) *vocab_out = vocab;
  if (merge_out != nullptr) *merge_out = merges;
  // The layout of the loaded tensors (1 once LoadWholeModel assembled them).
  job.model.tensor_model_parallel_size = ckpt.state.tensor_model_parallel_size;
  if (!job.vocab_size_given && ckpt.state.vocab_size > 0) {
    job.model.vocab_size = ckpt.state.vocab_size;
  } else if (!job.vocab_size_given) {
    if (vocab.empty()) {
      return coord::InvalidArgument("checkpoint " + ckpt.path +
                                    ": its config has no data.vocab_file; pass --vocab-file");
    }
    ASSIGN_OR_RETURN(job.model.vocab_size, ReadVocabSize(vocab));
  }
  RETURN_IF_ERROR(ValidateGptConfig(job.model).WithContext("checkpoint " + ckpt.path));
  const size_t n = GptParamLayout(job.model).num_params();
  if (n != ckpt.params.size()) {
    return coord::FailedPrecondition(
        "checkpoint " + ckpt.path + " holds " + std::to_string(ckpt.params.size()) +
        " parameters but its config (vocab " + std::to_string(job.model.vocab_size) + ") gives " +
        std::to_string(n) + "; wrong --vocab-file?");
  }
  return job.model;
}

}  // namespace trainer
