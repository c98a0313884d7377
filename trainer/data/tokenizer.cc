// The tokenizer factory (see tokenizer.h): Megatron's --tokenizer-type names, and
// where a Hugging Face model directory keeps its tokenizer.
#include "trainer/data/tokenizer.h"

#include "common/fs.h"
#include "trainer/data/bpe_tokenizer.h"
#include "trainer/data/hf_tokenizer.h"

namespace trainer::data {

namespace {

constexpr const char* kGpt2Type = "GPT2BPETokenizer";
constexpr const char* kHfType = "HuggingFaceTokenizer";
// Megatron's other --tokenizer-type choices: known, not implemented.
const char* const kOtherMegatronTypes[] = {"BertWordPieceLowerCase", "BertWordPieceCase",
                                           "SentencePieceTokenizer", "GPTSentencePieceTokenizer",
                                           "Llama2Tokenizer",        "TikTokenizer",
                                           "MultimodalTokenizer",    "NullTokenizer"};
const char kSupported[] =
    "supported: GPT2BPETokenizer (vocab_file + merge_file), "
    "HuggingFaceTokenizer (tokenizer_model)";

}  // namespace

coord::StatusOr<std::string> ResolveTokenizerType(const TokenizerSpec& s) {
  const bool gpt2_files = !s.vocab_file.empty() || !s.merge_file.empty();
  const bool hf = !s.model.empty();
  std::string type = s.type;
  if (type.empty()) {
    if (gpt2_files && hf) {
      return coord::InvalidArgument(
          "give vocab_file + merge_file (GPT-2 BPE) or tokenizer_model (a Hugging Face "
          "tokenizer.json), not both");
    }
    type = hf ? kHfType : kGpt2Type;
  }
  if (type == kGpt2Type) {
    if (hf) {
      return coord::InvalidArgument(
          "tokenizer_model is for HuggingFaceTokenizer; GPT2BPETokenizer reads vocab_file + "
          "merge_file");
    }
    if (s.vocab_file.empty()) return coord::InvalidArgument("vocab_file: required (vocab.json)");
    if (s.merge_file.empty()) return coord::InvalidArgument("merge_file: required (merges.txt)");
    return type;
  }
  if (type == kHfType) {
    if (gpt2_files) {
      return coord::InvalidArgument(
          "vocab_file/merge_file are for GPT2BPETokenizer; HuggingFaceTokenizer reads "
          "tokenizer_model (a tokenizer.json, or the model directory holding it)");
    }
    if (!hf) {
      return coord::InvalidArgument(
          "tokenizer_model: required by HuggingFaceTokenizer (a tokenizer.json, or the model "
          "directory holding it)");
    }
    return type;
  }
  for (const char* other : kOtherMegatronTypes) {
    if (type == other) {
      return coord::InvalidArgument("tokenizer_type \"" + type + "\" is not supported; " +
                                    kSupported);
    }
  }
  return coord::InvalidArgument("unknown tokenizer_type \"" + type + "\"; " + kSupported);
}

coord::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const TokenizerSpec& spec) {
  ASSIGN_OR_RETURN(const std::string type, ResolveTokenizerType(spec));
  if (type == kGpt2Type) {
    ASSIGN_OR_RETURN(auto tok, Gpt2Tokenizer::Load(spec.vocab_file, spec.merge_file));
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  // A model directory (Megatron's --tokenizer-model, AutoTokenizer.from_pretrained):
  // tokenizer.json when it has one, as transformers prefers the fast tokenizer.
  std::string path = spec.model;
  if (coord::IsDirectory(path)) {
    const std::string json_path = coord::JoinPath(path, "tokenizer.json");
    if (!coord::PathExists(json_path)) {
      if (coord::PathExists(coord::JoinPath(path, "vocab.json")) &&
          coord::PathExists(coord::JoinPath(path, "merges.txt"))) {
        ASSIGN_OR_RETURN(auto tok, HfBpeTokenizer::LoadSlowFiles(path));
        return std::unique_ptr<Tokenizer>(std::move(tok));
      }
      return coord::NotFound(path + ": no tokenizer.json and no vocab.json + merges.txt");
    }
    path = json_path;
  }
  ASSIGN_OR_RETURN(auto tok, HfBpeTokenizer::LoadTokenizerJson(path));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace trainer::data
