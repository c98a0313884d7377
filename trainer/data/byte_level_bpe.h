// The byte-level BPE model that GPT-2's vocab.json + merges.txt and Hugging Face's
// tokenizer.json (Qwen2, Llama 3) share: tokens kept as raw bytes, merges as pairs of
// token ids, and bpe() over one pre-tokenized piece. GPT-2's byte-to-unicode alphabet
// is a bijection, so merging ids is isomorphic to the references' merging of unicode
// strings. Also the vocab.json / merges.txt readers both tokenizers use.
// Not thread-safe: EncodePiece fills a cache; use one model per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace trainer::data {

class ByteLevelBpe {
 public:
  // A token as vocab files spell it (bytes_to_unicode of OpenAI's encoder.py) ->
  // its raw bytes. False if a character is outside the 256-character alphabet.
  static bool TokenToBytes(std::string_view token, std::string* bytes);

  // Sizes the tables for a vocabulary and merge list this large (saves rehashing).
  void Reserve(size_t tokens, size_t merges);
  // Adds a vocabulary entry; false if the id is already taken.
  bool AddToken(const std::string& bytes, int32_t id);
  // After the last AddToken: the first byte value that has no single-byte token
  // (every byte-level vocab has all 256), or -1 when all are there.
  int FindMissingByte();
  // Merge of two tokens (raw bytes) with a priority: lower ranks merge first, and a
  // repeated pair keeps its last rank. False when a part or the result is no token.
  bool AddMerge(const std::string& first, const std::string& second, int32_t rank);

  // Appends the ids of one piece: repeatedly merge every occurrence (left to right,
  // non-overlapping) of the adjacent pair with the lowest rank, until none has one.
  // With ignore_merges (Llama 3's tokenizer.json), a piece that is a token is that token.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* out);
  void set_ignore_merges(bool ignore) { ignore_merges_ = ignore; }

  // Id of the token with these raw bytes, -1 if none.
  int32_t Find(const std::string& bytes) const;
  // Raw bytes of a token, "" for an id without one.
  const std::string& TokenBytes(int32_t id) const;
  int32_t num_tokens() const { return static_cast<int32_t>(bytes_to_id_.size()); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_bytes_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank;       // lower merges first
    int32_t merged_id;  // the id of first + second
  };
  static uint64_t PairKey(int32_t first, int32_t second) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(first)) << 32) |
           static_cast<uint32_t>(second);
  }

  std::unordered_map<std::string, int32_t> bytes_to_id_;  // raw token bytes -> id
  std::vector<std::string> id_to_bytes_;                  // (max id + 1), "" = unused id
  int32_t byte_id_[256] = {};                             // single-byte token ids
  std::unordered_map<uint64_t, Merge> merges_;            // PairKey(first, second) -> merge
  bool ignore_merges_ = false;
  // piece bytes -> ids; cleared when it reaches kMaxCacheEntries so memory stays bounded.
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
  static constexpr size_t kMaxCacheEntries = 1 << 20;
};

// vocab.json (a.k.a. GPT-2's encoder.json): a JSON object of token -> id. Errors name
// the file: not an object, an id that is not an integer or is used twice, a token
// outside the byte alphabet, a missing byte token. *eod_id gets "<|endoftext|>"'s id
// (-1 if none); *num_entries the object's size.
coord::Status LoadVocabJson(const std::string& path, ByteLevelBpe* bpe, int32_t* eod_id,
                            int32_t* num_entries);

// merges.txt (a.k.a. GPT-2's vocab.bpe): one "first second" per line, highest priority
// first, after a "#version" header (required when require_header, as GPT-2's reader
// does; optional, as Hugging Face's slow tokenizers read it, otherwise). Errors name
// the file and line.
coord::Status LoadMergesTxt(const std::string& path, bool require_header, ByteLevelBpe* bpe);

}  // namespace trainer::data
