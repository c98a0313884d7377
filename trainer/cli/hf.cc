// gpt-rank export-hf / import-hf: hand a checkpoint to the Hugging Face ecosystem
// (model.safetensors + config.json) or start training from HF GPT-2 weights (an
// iteration-0 checkpoint with zero Adam state that `train --load` resumes from).
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/verb_args.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/checkpoint/safetensors.h"
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

// The checks that make HF weights usable under the job's model section.
coord::Status CheckSameArchitecture(const trainer::GptConfig& hf, const trainer::GptConfig& job,
                                    bool job_vocab_given) {
  auto differ = [](const char* name, int a, int b) {
    return coord::InvalidArgument(std::string("model.") + name + " is " + std::to_string(b) +
                                  " in the job config but " + std::to_string(a) +
                                  " in the Hugging Face config");
  };
  if (hf.num_layers != job.num_layers) return differ("num_layers", hf.num_layers, job.num_layers);
  if (hf.hidden_size != job.hidden_size) {
    return differ("hidden_size", hf.hidden_size, job.hidden_size);
  }
  if (hf.num_attention_heads != job.num_attention_heads) {
    return differ("num_attention_heads", hf.num_attention_heads, job.num_attention_heads);
  }
  if (hf.max_position_embeddings != job.max_position_embeddings) {
    return differ("max_position_embeddings", hf.max_position_embeddings,
                  job.max_position_embeddings);
  }
  if (job_vocab_given && hf.vocab_size != job.vocab_size) {
    return differ("vocab_size", hf.vocab_size, job.vocab_size);
  }
  return coord::Status::Ok();
}

}  // namespace

int RunExportHf(const std::vector<std::string>& args) {
  std::string load, out, vocab, merges;
  int64_t iteration = -1;
  po::options_description desc("export-hf options");
  desc.add_options()("load", po::value(&load), "checkpoint directory (required)")(
      "iteration", po::value(&iteration), "iteration to export (default: the latest)")(
      "out", po::value(&out), "output directory for model.safetensors + config.json (required)")(
      "vocab-file", po::value(&vocab), "vocab.json, for the vocab size (default: from config)");
  const coord::VerbUsage verb = {"gpt-rank", "export-hf", "export-hf --load DIR --out DIR",
                                 "write a checkpoint as Hugging Face GPT-2"};
  if (int rc = ParseOrExit(verb, args, desc, {"load", "out"}); rc >= 0) return rc;

  auto ckpt = trainer::LoadCheckpointForInference(load, iteration);
  if (!ckpt.ok()) {
    const bool usage = ckpt.status().code() == coord::StatusCode::kInvalidArgument;
    return Fail("export-hf", ckpt.status(), usage ? 2 : 1);
  }
  for (const std::string& w : ckpt->warnings) std::cerr << "warning: " << w << "\n";
  auto config = trainer::CheckpointModelConfig(*ckpt, vocab, "", nullptr, nullptr);
  if (!config.ok()) return Fail("export-hf", config.status(), 2);
  coord::Status st = coord::MakeDirs(out);
  if (st.ok()) st = trainer::ExportHfGpt2(out, *config, ckpt->params.data());
  if (!st.ok()) return Fail("export-hf", st, 1);
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
      "Hugging Face GPT-2 weights -> an iteration-0 checkpoint to train from"};
  if (int rc = ParseOrExit(verb, args, desc, {"hf", "config", "save"}); rc >= 0) return rc;

  auto hf = trainer::ReadHfGpt2Config(hf_dir);
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
  if (!st.ok()) return Fail("import-hf", st.WithContext(config_path), 2);

  const size_t n = trainer::GptParamLayout(config).num_params();
  std::vector<float> params(n), zeros(n, 0.0f);  // (n,) each; Adam starts from zero
  st = trainer::ImportHfGpt2(hf_dir, config, params.data());
  if (!st.ok()) return Fail("import-hf", st, 2);
  trainer::TrainState state;
  state.seed = job->seed;
  state.config_json = *job_text;
  st = trainer::SaveCheckpoint(save, state, {params.data(), zeros.data(), zeros.data(), n});
  if (!st.ok()) return Fail("import-hf", st, 1);
  std::cerr << "imported " << hf_dir << " (" << n << " parameters) to "
            << trainer::CheckpointIterDir(save, 0) << "\n";
  return 0;
}

}  // namespace gpt_rank::cli
