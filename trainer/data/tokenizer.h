// The one tokenizer interface preprocess, data-info, generate and the trainer use,
// and the factory that builds the tokenizer a job names, with Megatron's names:
//   GPT2BPETokenizer      vocab_file + merge_file (GPT-2's vocab.json + merges.txt)
//   HuggingFaceTokenizer  tokenizer_model: a tokenizer.json, or a model directory
//                         holding one (else vocab.json + merges.txt + tokenizer_config.json)
// Implementations are not thread-safe (Encode fills a cache): one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace trainer::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of UTF-8 text, as the reference encodes it with no special tokens added
  // around it (special tokens written in the text are still recognised, where the
  // tokenizer has them). Invalid UTF-8 still encodes, byte by byte.
  virtual std::vector<int32_t> Encode(std::string_view text) = 0;
  // The bytes the ids stand for, concatenated (not necessarily valid UTF-8 when the
  // ids cut a character; see SanitizeUtf8). Unknown id -> InvalidArgument.
  virtual coord::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const = 0;
  // The bytes of one token ("" for an id with no token).
  virtual const std::string& TokenBytes(int32_t id) const = 0;
  // The id of the token whose text is `token` (e.g. "<|im_end|>"), -1 if none.
  virtual int32_t TokenId(std::string_view token) const = 0;

  // One more than the largest id: the rows an embedding needs (GPT-2: 50257; Qwen2.5:
  // 151665, model vocab and added tokens).
  virtual int32_t vocab_size() const = 0;
  // The document separator preprocess appends (Megatron's tokenizer.eod), -1 if none.
  virtual int32_t eod_id() const = 0;
  // What was loaded, for logs: "GPT-2 BPE (50257 tokens)".
  virtual std::string Describe() const = 0;
};

// Which tokenizer, as a job or a command line names it.
struct TokenizerSpec {
  std::string type;        // "GPT2BPETokenizer", "HuggingFaceTokenizer" or "" (from the paths)
  std::string vocab_file;  // GPT2BPETokenizer
  std::string merge_file;  // GPT2BPETokenizer
  std::string model;       // HuggingFaceTokenizer: tokenizer.json or a directory
};

// The type the spec means ("GPT2BPETokenizer" or "HuggingFaceTokenizer"), checking
// the paths fit it: other Megatron types are refused by name, GPT-2 files and a
// Hugging Face tokenizer together are refused, a missing path is named. Errors use
// the config keys (vocab_file, merge_file, tokenizer_model, tokenizer_type).
coord::StatusOr<std::string> ResolveTokenizerType(const TokenizerSpec& spec);

// Loads the tokenizer the spec names. Errors name the file and what is wrong.
coord::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const TokenizerSpec& spec);

}  // namespace trainer::data
