// gpt-rank generate: sample text from a checkpoint (prompt, temperature, top-k, max
// tokens, seed). The model config comes from the config stored in the checkpoint, the
// tokenizer from --vocab-file/--merge-file, --tokenizer-model or the config's data section.
#include "trainer/model/generate.h"

#include <boost/program_options.hpp>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "common/verb_args.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/cli/commands.h"
#include "trainer/data/tokenizer.h"

namespace gpt_rank::cli {

namespace {

namespace po = boost::program_options;

struct GenerateArgs {
  std::string load, prompt, vocab_file, merge_file, tokenizer_model;
  int64_t iteration = -1;
  trainer::SampleOptions sample;
};

// 0 = run, otherwise the exit code to return (help printed: 0 via *help).
int ParseGenerateArgs(const std::vector<std::string>& args, GenerateArgs* out, bool* help) {
  po::options_description desc("generate options");
  desc.add_options()("load", po::value(&out->load),
                     "checkpoint directory (save dir of a run; required)")(
      "iteration", po::value(&out->iteration), "iteration to load (default: the latest)")(
      "prompt", po::value(&out->prompt)->default_value(""),
      "text to continue (empty: start from <|endoftext|>)")(
      "max-tokens", po::value(&out->sample.max_tokens)->default_value(64), "tokens to generate")(
      "temperature", po::value(&out->sample.temperature)->default_value(1.0f), "0: greedy")(
      "top-k", po::value(&out->sample.top_k)->default_value(0), "0: no top-k cut")(
      "seed", po::value(&out->sample.seed)->default_value(1234), "sampling seed")(
      "vocab-file", po::value(&out->vocab_file), "vocab.json (default: from the checkpoint)")(
      "merge-file", po::value(&out->merge_file), "merges.txt (default: from the checkpoint)")(
      "tokenizer-model", po::value(&out->tokenizer_model),
      "a Hugging Face tokenizer.json or its directory (default: from the checkpoint)");
  const coord::VerbUsage verb = {"gpt-rank", "generate", "generate --load DIR [--prompt TEXT]",
                                 "sample text from a checkpoint"};
  po::variables_map vm;
  int code = 0;
  if (!coord::ParseVerbArgs(args, verb, desc, {}, &vm, &code)) {
    *help = code == 0;
    return code;
  }
  if (out->load.empty()) {
    std::cerr << "gpt-rank generate: --load is required (a checkpoint directory)\n";
    return 2;
  }
  if (out->sample.max_tokens <= 0 || out->sample.temperature < 0 || out->sample.top_k < 0) {
    std::cerr << "gpt-rank generate: --max-tokens must be > 0, --temperature and --top-k >= 0\n";
    return 2;
  }
  return 0;
}

// The tokenizer: the command line's (--tokenizer-model, or --vocab-file/--merge-file),
// else the one the checkpoint's job config names.
coord::StatusOr<std::unique_ptr<trainer::data::Tokenizer>> LoadGenerateTokenizer(
    const GenerateArgs& a, const trainer::LoadedCheckpoint& ckpt, const std::string& vocab,
    const std::string& merges) {
  trainer::data::TokenizerSpec spec;
  if (!a.tokenizer_model.empty()) {
    spec = {"", a.vocab_file, a.merge_file, a.tokenizer_model};
  } else if (a.vocab_file.empty() && a.merge_file.empty()) {
    ASSIGN_OR_RETURN(const trainer::JobModelConfig job,
                     trainer::ParseJobModelConfig(ckpt.state.config_json, ckpt.path));
    if (!job.tokenizer_model.empty()) spec = {job.tokenizer_type, "", "", job.tokenizer_model};
  }
  if (spec.model.empty()) {
    if (vocab.empty() || merges.empty()) {
      return coord::InvalidArgument(
          "no tokenizer: pass --vocab-file and --merge-file, or --tokenizer-model");
    }
    spec = {"", vocab, merges, ""};
  }
  return trainer::data::LoadTokenizer(spec);
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  GenerateArgs a;
  bool help = false;
  if (int rc = ParseGenerateArgs(args, &a, &help); rc != 0 || help) return rc;

  auto ckpt = trainer::LoadCheckpointForInference(a.load, a.iteration);
  if (!ckpt.ok()) {
    std::cerr << "gpt-rank generate: " << ckpt.status().message() << "\n";
    return ckpt.status().code() == coord::StatusCode::kInvalidArgument ? 2 : 1;
  }
  for (const std::string& w : ckpt->warnings) std::cerr << "warning: " << w << "\n";
  std::string vocab, merges;
  auto config = trainer::CheckpointModelConfig(*ckpt, a.vocab_file, a.merge_file, &vocab, &merges);
  if (!config.ok()) {
    std::cerr << "gpt-rank generate: " << config.status().message() << "\n";
    return 2;
  }
  auto tok = LoadGenerateTokenizer(a, *ckpt, vocab, merges);
  if (!tok.ok()) {
    std::cerr << "gpt-rank generate: " << tok.status().message() << "\n";
    return 2;
  }
  const int max_seq = config->max_position_embeddings;
  auto model = trainer::GptModel::Create(*config, /*max_batch=*/1, max_seq);
  if (!model.ok()) {
    std::cerr << "gpt-rank generate: " << model.status().message() << "\n";
    return 2;
  }
  std::copy(ckpt->params.begin(), ckpt->params.end(), (*model)->param_data());

  std::vector<int32_t> prompt = (*tok)->Encode(a.prompt);
  if (prompt.empty() && (*tok)->eod_id() >= 0) prompt.push_back((*tok)->eod_id());
  a.sample.stop_token = (*tok)->eod_id();
  auto ids = trainer::GenerateTokens(model->get(), prompt, a.sample, max_seq);
  if (!ids.ok()) {
    std::cerr << "gpt-rank generate: " << ids.status().message() << "\n";
    return 2;
  }
  if (!ids->empty() && ids->back() == (*tok)->eod_id()) ids->pop_back();  // not text
  auto text = (*tok)->Decode(*ids);
  if (!text.ok()) {
    std::cerr << "gpt-rank generate: " << text.status().message() << "\n";
    return 1;
  }
  std::cerr << "loaded " << ckpt->path << " (iteration " << ckpt->state.iteration << ")\n";
  std::cout << a.prompt << *text << std::endl;
  return 0;
}

}  // namespace gpt_rank::cli
