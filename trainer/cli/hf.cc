// gpt-rank export-hf / import-hf: hand a checkpoint to the Hugging Face ecosystem
// (config.json + model.safetensors, sharded with an index when large) or start training
// from HF weights - GPT-2, Llama or Qwen2 (an iteration-0 checkpoint with zero Adam
// state, in the job's tensor-parallel layout, that `train --load` resumes from).
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/verb_args.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/checkpoint/hf_llama.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/checkpoint/tp_checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/model/gpt_params.h"

namespace gpt_rank::cli {

namespace {

namespace po = boost::program_options;

// Parses the verb's flags (coord::ParseVerbArgs: --help, usage errors) and checks
// the required ones; returns -1 to go on, else the exit code.
int ParseOrExit(const coord::VerbUsage& verb, const std::vector<std::string>& args,
                const po::options_description& desc, const std::vector<const char*>& required) {
  po::variables_map vm;
  int code = 0;
  if (!coord::ParseVerbArgs(args, verb, desc, {}, &vm, &code)) return code;
  for (const char* r : required) {
    if (!vm.count(r)) {
      std::cerr << "gpt-rank " << verb.name << ": --" << r << " is required (see --help)\n";
      return 2;
    }
  }
  return -1;
}

int Fail(const char* verb, const coord::Status& st, int code) {
  std::cerr << "gpt-rank " << verb << ": " << st.message() << "\n";
  return code;
}

// The checks that make HF weights usable under the job's model section: every key of
// the architecture must agree (the job keeps its padding, dropout and seq_length).
coord::Status CheckSameArchitecture(const trainer::GptConfig& hf, const trainer::GptConfig& job,
                                    bool job_vocab_given) {
  using trainer::GptConfig;
  struct Field {
    const char* key;
    std::string (*get)(const GptConfig&);
  };
  static const Field kGpt2Fields[] = {
      {"num_layers", [](const GptConfig& c) { return std::to_string(c.num_layers); }},
      {"hidden_size", [](const GptConfig& c) { return std::to_string(c.hidden_size); }},
      {"num_attention_heads",
       [](const GptConfig& c) { return std::to_string(c.num_attention_heads); }},
  };
  static const Field kFamilyFields[] = {
      {"normalization",
       [](const GptConfig& c) { return std::string(trainer::NormalizationName(c.normalization)); }},
      {"position_embedding_type",
       [](const GptConfig& c) {
         return std::string(trainer::PositionEmbeddingName(c.position_embedding_type));
       }},
      {"swiglu", [](const GptConfig& c) { return std::string(c.swiglu ? "true" : "false"); }},
      {"group_query_attention",
       [](const GptConfig& c) { return std::string(c.group_query_attention ? "true" : "false"); }},
      {"num_query_groups", [](const GptConfig& c) { return std::to_string(c.kv_heads()); }},
      {"untie_embeddings_and_output_weights",
       [](const GptConfig& c) { return std::string(c.tied_output() ? "false" : "true"); }},
      {"disable_bias_linear",
       [](const GptConfig& c) { return std::string(c.add_bias_linear ? "false" : "true"); }},
      {"add_qkv_bias",
       [](const GptConfig& c) { return std::string(c.qkv_bias() ? "true" : "false"); }},
      {"ffn_hidden_size", [](const GptConfig& c) { return std::to_string(c.ffn_size()); }},
      {"rotary_base", [](const GptConfig& c) { return std::to_string(c.rotary_base); }},
      {"norm_epsilon", [](const GptConfig& c) { return std::to_string(c.layernorm_epsilon); }},
  };
  auto check = [&](const Field& f) {
    const std::string a = f.get(hf), b = f.get(job);
    if (a == b) return coord::Status::Ok();
    return coord::InvalidArgument(std::string("model.") + f.key + " is " + b +
                                  " in the job config but " + a +
                                  " in the Hugging Face config");
  };
  for (const Field& f : kGpt2Fields) RETURN_IF_ERROR(check(f));
  if (!hf.is_gpt2() || !job.is_gpt2()) {
    for (const Field& f : kFamilyFields) RETURN_IF_ERROR(check(f));
  }
  if (!hf.rope() && hf.max_position_embeddings != job.max_position_embeddings) {
    return check({"max_position_embeddings",
                  [](const GptConfig& c) { return std::to_string(c.max_position_embeddings); }});
  }
  if (job_vocab_given && hf.vocab_size != job.vocab_size) {
    return check({"vocab_size", [](const GptConfig& c) { return std::to_string(c.vocab_size); }});
  }
  return coord::Status::Ok();
}

// "5GB", "500MB", "1000000" (bytes): transformers' max_shard_size spellings.
coord::StatusOr<uint64_t> ParseShardSize(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (...) {
    pos = 0;
  }
  const std::string unit = text.substr(pos);
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "KB") scale = 1e3;
  if (unit == "MB") scale = 1e6;
  if (unit == "GB") scale = 1e9;
  if (unit == "KiB") scale = 1024.0;
  if (unit == "MiB") scale = 1024.0 * 1024;
  if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  if (pos == 0 || scale == 0 || !(value > 0)) {
    return coord::InvalidArgument("--max-shard-size: expected a size such as 5GB, 500MB or a "
                                  "number of bytes, got \"" + text + "\"");
  }
  return static_cast<uint64_t>(value * scale);
}

}  // namespace

int RunExportHf(const std::vector<std::string>& args) {
  std::string load, out, vocab, merges, dtype = "fp32", shard_size = "5GB";
  int64_t iteration = -1;
  po::options_description desc("export-hf options");
  desc.add_options()("load", po::value(&load), "checkpoint directory (required)")(
      "iteration", po::value(&iteration), "iteration to export (default: the latest)")(
      "out", po::value(&out), "output directory for model.safetensors + config.json (required)")(
      "vocab-file", po::value(&vocab), "vocab.json, for the vocab size (default: from config)")(
      "dtype", po::value(&dtype),
      "tensor type written: fp32 (default, the master weights), bf16 or fp16 (Llama/Qwen2)")(
      "max-shard-size", po::value(&shard_size),
      "largest safetensors shard (default 5GB); more shards get model.safetensors.index.json");
  const coord::VerbUsage verb = {"gpt-rank", "export-hf", "export-hf --load DIR --out DIR",
                                 "write a checkpoint as Hugging Face GPT-2, Llama or Qwen2"};
  if (int rc = ParseOrExit(verb, args, desc, {"load", "out"}); rc >= 0) return rc;
  trainer::HfExportOptions options;
  auto parsed_dtype = trainer::ParseSafetensorsDtype(dtype);
  if (!parsed_dtype.ok()) return Fail("export-hf", parsed_dtype.status(), 2);
  options.dtype = *parsed_dtype;
  auto parsed_size = ParseShardSize(shard_size);
  if (!parsed_size.ok()) return Fail("export-hf", parsed_size.status(), 2);
  options.max_shard_bytes = *parsed_size;

  auto ckpt = trainer::LoadCheckpointForInference(load, iteration);
  if (!ckpt.ok()) {
    const bool usage = ckpt.status().code() == coord::StatusCode::kInvalidArgument;
    return Fail("export-hf", ckpt.status(), usage ? 2 : 1);
  }
  for (const std::string& w : ckpt->warnings) std::cerr << "warning: " << w << "\n";
  auto config = trainer::CheckpointModelConfig(*ckpt, vocab, "", nullptr, nullptr);
  if (!config.ok()) return Fail("export-hf", config.status(), 2);
  coord::Status st = coord::MakeDirs(out);
  if (st.ok()) st = trainer::ExportHfModel(out, *config, ckpt->params.data(), options);
  if (!st.ok()) {
    return Fail("export-hf", st, st.code() == coord::StatusCode::kInvalidArgument ? 2 : 1);
  }
  std::cerr << "exported " << ckpt->path << " to " << out << "\n";
  return 0;
}

int RunImportHf(const std::vector<std::string>& args) {
  std::string hf_dir, config_path, save;
  po::options_description desc("import-hf options");
  desc.add_options()("hf", po::value(&hf_dir),
                     "directory with model.safetensors + config.json (required)")(
      "config", po::value(&config_path), "the job config to train with (required)")(
      "save", po::value(&save), "checkpoint directory to write (required)");
  const coord::VerbUsage verb = {
      "gpt-rank", "import-hf", "import-hf --hf DIR --config F --save DIR",
      "Hugging Face GPT-2 / Llama / Qwen2 weights -> an iteration-0 checkpoint to train from "
      "(in the job's tensor-parallel layout)"};
  if (int rc = ParseOrExit(verb, args, desc, {"hf", "config", "save"}); rc >= 0) return rc;

  auto hf = trainer::ReadHfModelConfig(hf_dir);
  if (!hf.ok()) return Fail("import-hf", hf.status(), 2);
  auto job_text = coord::ReadFile(config_path);
  if (!job_text.ok()) return Fail("import-hf", job_text.status(), 2);
  auto job = trainer::ParseJobModelConfig(*job_text, config_path);
  if (!job.ok()) return Fail("import-hf", job.status(), 2);
  coord::Status st = CheckSameArchitecture(*hf, job->model, job->vocab_size_given);
  if (!st.ok()) return Fail("import-hf", st.WithContext(config_path + " vs " + hf_dir), 2);
  trainer::GptConfig config = job->model;  // the job's padding, dropout, seq_length
  config.vocab_size = hf->vocab_size;
  st = trainer::ValidateGptConfig(config);
  if (st.ok()) st = trainer::CheckTensorParallel(config, config.tensor_model_parallel_size);
  if (!st.ok()) return Fail("import-hf", st.WithContext(config_path), 2);
  if (!hf->is_gpt2() && !job->vocab_size_given) {
    std::cerr << "note: set model.vocab_size = " << hf->vocab_size << " in " << config_path
              << " (the embedding's rows; a tokenizer may have fewer) so `train` builds this "
                 "shape\n";
  }

  // The whole model at the job's padding (tp 1 layout), then cut into the job's shards.
  const size_t n = trainer::GptParamLayout(config).num_params();
  std::vector<float> params(n);  // (n,)
  st = trainer::ImportHfModel(hf_dir, config, params.data());
  if (!st.ok()) return Fail("import-hf", st, 2);
  trainer::TrainState state;
  state.seed = job->seed;
  state.config_json = *job_text;
  state.vocab_size = config.vocab_size;  // the HF embedding's rows, whatever the tokenizer's
  const int tp = config.tensor_model_parallel_size;
  if (tp > 1) {
    st = trainer::SaveTensorParallelCheckpoint(save, state, config, params.data());
  } else {
    std::vector<float> zeros(n, 0.0f);  // Adam starts from zero
    st = trainer::SaveCheckpoint(save, state, {params.data(), zeros.data(), zeros.data(), n});
  }
  if (!st.ok()) return Fail("import-hf", st, 1);
  std::cerr << "imported " << hf_dir << " (" << n << " parameters) to "
            << trainer::CheckpointIterDir(save, 0)
            << (tp > 1 ? " as " + std::to_string(tp) + " tensor-parallel shards" : std::string())
            << "\n";
  return 0;
}

}  // namespace gpt_rank::cli
