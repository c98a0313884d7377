// gpt-rank generate: sample text from a checkpoint (prompt, temperature, top-k, top-p,
// max tokens, seed) with a KV cache (the prompt once, then one token per step; or
// --no-kv-cache: the whole window every token). The model config comes from the config
// stored in the checkpoint (any tensor-parallel layout comes back whole: inference is
// one process, fp32 CPU), the tokenizer from --vocab-file/--merge-file,
// --tokenizer-model or the config's data section. Stops at <|endoftext|> (the
// tokenizer's end of document) and at generation_config.json's eos ids (beside the
// tokenizer, or --generation-config). Tokens/s (prefill and decode) go to stderr.
// Chat: --chat TEXT (one user turn) or --messages FILE (ms-swift's {"messages": [...]})
// rendered with the chat template (trainer/data/chat_template.h: from the tokenizer's
// tokenizer_config.json, or --chat-template) and its generation prompt; the reply stops
// at the template's end token (<|im_end|>) and only the reply is printed.
#include "trainer/model/generate.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/json_file.h"
#include "common/verb_args.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/checkpoint/hf_generation_config.h"
#include "trainer/cli/commands.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/tokenizer.h"

namespace gpt_rank::cli {

namespace {

namespace po = boost::program_options;

constexpr int kDefaultMaxTokens = 64;  // capped by the context when not given

struct GenerateArgs {
  std::string load, prompt, vocab_file, merge_file, tokenizer_model, generation_config;
  std::string chat, messages_file, chat_template = "auto", system;
  bool system_given = false;
  int64_t iteration = -1;
  bool no_kv_cache = false;
  bool max_tokens_given = false;
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
      "max-tokens", po::value(&out->sample.max_tokens)->default_value(kDefaultMaxTokens),
      "tokens to generate (default capped by the model's context)")(
      "temperature", po::value(&out->sample.temperature)->default_value(1.0f), "0: greedy")(
      "top-k", po::value(&out->sample.top_k)->default_value(0), "0: no top-k cut")(
      "top-p", po::value(&out->sample.top_p)->default_value(1.0f),
      "nucleus sampling: keep the most likely tokens up to this mass (1: no cut)")(
      "seed", po::value(&out->sample.seed)->default_value(1234), "sampling seed")(
      "no-kv-cache", po::bool_switch(&out->no_kv_cache),
      "re-run the whole window every token (the reference; slow)")(
      "generation-config", po::value(&out->generation_config),
      "a Hugging Face generation_config.json whose eos_token_id ends the text (default: "
      "the one beside --tokenizer-model, if any)")(
      "chat", po::value(&out->chat), "a user message: reply to it with the chat template")(
      "messages", po::value(&out->messages_file),
      "a conversation to continue: JSON {\"messages\": [{\"role\", \"content\"}, ...]} "
      "(ms-swift) or the bare list")(
      "chat-template", po::value(&out->chat_template)->default_value("auto"),
      "chatml, qwen, qwen2_5 or auto (the tokenizer_config.json beside the tokenizer)")(
      "system", po::value(&out->system),
      "the system prompt when the conversation has none (default: the template's)")(
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
  out->max_tokens_given = !vm["max-tokens"].defaulted();
  out->system_given = vm.count("system") > 0;
  const int modes = !out->prompt.empty() + !out->chat.empty() + !out->messages_file.empty();
  if (modes > 1) {
    std::cerr << "gpt-rank generate: give one of --prompt, --chat and --messages\n";
    return 2;
  }
  if (out->load.empty()) {
    std::cerr << "gpt-rank generate: --load is required (a checkpoint directory)\n";
    return 2;
  }
  if (auto s = trainer::ValidateSampleOptions(out->sample); !s.ok()) {
    std::cerr << "gpt-rank " << s.message() << " (--max-tokens, --temperature, --top-k, --top-p)\n";
    return 2;
  }
  return 0;
}

// The tokenizer: the command line's (--tokenizer-model, or --vocab-file/--merge-file),
// else the one the checkpoint's job config names. *model_path: the tokenizer.json (or
// its directory) used, "" for vocab/merges files.
coord::StatusOr<std::unique_ptr<trainer::data::Tokenizer>> LoadGenerateTokenizer(
    const GenerateArgs& a, const trainer::LoadedCheckpoint& ckpt, const std::string& vocab,
    const std::string& merges, std::string* model_path) {
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
  *model_path = spec.model;
  return trainer::data::LoadTokenizer(spec);
}

// The ids that end the text: the tokenizer's end of document, <|endoftext|>, and the
// generation config's eos ids.
coord::Status SetStopTokens(const GenerateArgs& a, const std::string& tokenizer_model,
                            const trainer::data::Tokenizer& tok, trainer::SampleOptions* o) {
  o->stop_token = tok.eod_id();
  const int32_t endoftext = tok.TokenId("<|endoftext|>");
  if (endoftext >= 0) o->stop_tokens.push_back(endoftext);
  const std::string gen_config = a.generation_config.empty()
                                     ? trainer::GenerationConfigBeside(tokenizer_model)
                                     : a.generation_config;
  if (gen_config.empty()) return coord::Status::Ok();
  ASSIGN_OR_RETURN(const std::vector<int> eos, trainer::ReadHfEosTokenIds(gen_config));
  o->stop_tokens.insert(o->stop_tokens.end(), eos.begin(), eos.end());
  return coord::Status::Ok();
}

// A conversation file: {"messages": [...]} (ms-swift's form) or the bare list, each
// {"role": ..., "content": ...}; roles are checked when the template renders them.
coord::StatusOr<std::vector<trainer::data::ChatMessage>> ReadMessages(const std::string& path) {
  ASSIGN_OR_RETURN(const nlohmann::json j, coord::LoadJsonFile(path));
  const nlohmann::json* list = &j;
  if (j.is_object() && j.contains("messages")) list = &j["messages"];
  if (!list->is_array() || list->empty()) {
    return coord::InvalidArgument(path +
                                  ": expected {\"messages\": [...]} or a non-empty list "
                                  "of {\"role\", \"content\"}");
  }
  std::vector<trainer::data::ChatMessage> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& m = (*list)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return coord::InvalidArgument(path + ": messages[" + std::to_string(i) +
                                    "] needs string \"role\" and \"content\"");
    }
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

// The prompt ids of a chat: the conversation rendered with the generation prompt; the
// template's end token becomes a stop token.
coord::StatusOr<std::vector<int32_t>> ChatPrompt(const GenerateArgs& a,
                                                 const std::string& tokenizer_model,
                                                 trainer::data::Tokenizer* tok,
                                                 trainer::SampleOptions* o) {
  std::vector<trainer::data::ChatMessage> messages;
  if (!a.chat.empty()) {
    messages.push_back({"user", a.chat});
  } else {
    ASSIGN_OR_RETURN(messages, ReadMessages(a.messages_file));
  }
  const std::optional<std::string> system =
      a.system_given ? std::optional<std::string>(a.system) : std::nullopt;
  auto tmpl = trainer::data::ChatTemplate::Resolve(a.chat_template, tokenizer_model, system);
  if (!tmpl.ok()) return tmpl.status().WithContext("--chat-template " + a.chat_template);
  ASSIGN_OR_RETURN(const trainer::data::ChatTokens rendered,
                   tmpl->Render(messages, tok, /*add_generation_prompt=*/true));
  const int32_t end = tok->TokenId(tmpl->end_token());
  if (end >= 0) o->stop_tokens.push_back(end);
  return rendered.ids;
}

void PrintRate(const char* what, int tokens, double seconds) {
  std::fprintf(stderr, "%s: %d tokens in %.3f s (%.1f tokens/s)", what, tokens, seconds,
               seconds > 0.0 ? tokens / seconds : 0.0);
}

// Runs the chosen engine; the stats line goes to stderr.
coord::StatusOr<std::vector<int32_t>> Generate(const GenerateArgs& a,
                                               const trainer::GptConfig& config,
                                               std::vector<float>& params,
                                               const std::vector<int32_t>& prompt) {
  if (!a.no_kv_cache) {
    ASSIGN_OR_RETURN(
        trainer::Generation g,
        trainer::GenerateWithCache(config, params.data(), params.size(), prompt, a.sample));
    PrintRate("prefill", g.prompt_tokens, g.prefill_seconds);
    std::fputs("; ", stderr);
    PrintRate("decode", g.decode_tokens, g.decode_seconds);
    std::fprintf(stderr, "; stopped: %s\n", trainer::StopReasonName(g.stop));
    return g.tokens;
  }
  const int max_seq = config.max_position_embeddings;
  ASSIGN_OR_RETURN(auto model, trainer::GptModel::Create(config, /*max_batch=*/1, max_seq));
  std::copy(params.begin(), params.end(), model->param_data());
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                   trainer::GenerateTokens(model.get(), prompt, a.sample, max_seq));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PrintRate("generate (no KV cache)", static_cast<int>(ids.size()), s);
  std::fputs("\n", stderr);
  return ids;
}

int Fail(const coord::Status& s, int code) {
  std::cerr << "gpt-rank generate: " << s.message() << "\n";
  return code;
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  GenerateArgs a;
  bool help = false;
  if (int rc = ParseGenerateArgs(args, &a, &help); rc != 0 || help) return rc;

  auto ckpt = trainer::LoadCheckpointForInference(a.load, a.iteration);
  if (!ckpt.ok()) {
    return Fail(ckpt.status(), ckpt.status().code() == coord::StatusCode::kInvalidArgument ? 2 : 1);
  }
  for (const std::string& w : ckpt->warnings) std::cerr << "warning: " << w << "\n";
  std::string vocab, merges, tokenizer_model;
  auto config = trainer::CheckpointModelConfig(*ckpt, a.vocab_file, a.merge_file, &vocab, &merges);
  if (!config.ok()) return Fail(config.status(), 2);
  auto tok = LoadGenerateTokenizer(a, *ckpt, vocab, merges, &tokenizer_model);
  if (!tok.ok()) return Fail(tok.status(), 2);
  if (auto s = SetStopTokens(a, tokenizer_model, **tok, &a.sample); !s.ok()) return Fail(s, 2);
  if (!a.max_tokens_given) {
    a.sample.max_tokens = std::min(a.sample.max_tokens, config->max_position_embeddings);
  }

  const bool chat = !a.chat.empty() || !a.messages_file.empty();
  std::vector<int32_t> prompt;
  if (chat) {
    auto rendered = ChatPrompt(a, tokenizer_model, tok->get(), &a.sample);
    if (!rendered.ok()) return Fail(rendered.status(), 2);
    prompt = std::move(*rendered);
  } else {
    prompt = (*tok)->Encode(a.prompt);
    if (prompt.empty() && (*tok)->eod_id() >= 0) prompt.push_back((*tok)->eod_id());
  }
  auto ids = Generate(a, *config, ckpt->params, prompt);
  if (!ids.ok()) return Fail(ids.status(), 2);
  const std::vector<int>& stops = a.sample.stop_tokens;
  if (!ids->empty() && (ids->back() == a.sample.stop_token ||
                        std::find(stops.begin(), stops.end(), ids->back()) != stops.end())) {
    ids->pop_back();  // not text
  }
  auto text = (*tok)->Decode(*ids);
  if (!text.ok()) return Fail(text.status(), 1);
  std::cerr << "loaded " << ckpt->path << " (iteration " << ckpt->state.iteration << ")\n";
  std::cout << (chat ? "" : a.prompt) << *text << std::endl;  // a chat prints the reply only
  return 0;
}

}  // namespace gpt_rank::cli
