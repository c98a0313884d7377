// Hugging Face's added tokens (tokenizer.json "added_tokens", tokenizer_config.json
// "added_tokens_decoder"): <|endoftext|>, <|im_start|>, <|im_end|> ... found in the
// raw text before normalization, pre-tokenization and BPE, leftmost first and the
// longest where several start at one place (HF's aho-corasick LeftmostLongest,
// transformers.js's trie). Flags as HF applies them:
//   lstrip / rstrip  the match takes the whitespace on its left / right with it
//   single_word      matches only where no word character touches it
//   normalized       matched in the raw text all the same (transformers.js does;
//                    HF would match it after normalization: the same unless NFC
//                    changes the token or its neighbours; Qwen's tokens are all false)
//   special          only reported (SpecialId), e.g. for skipping on decode
// Immutable after Add; thread-safe to Split.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace trainer::data {

struct AddedToken {
  int32_t id = -1;
  std::string content;  // the text as written (not byte-level spelled)
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

class AddedTokens {
 public:
  // False if the content is empty or already added (HF keeps the first).
  bool Add(const AddedToken& token);

  struct Segment {
    size_t offset;  // bytes [offset, offset + length) of the text
    size_t length;
    int32_t token_id;  // the added token, or -1 for text to tokenize normally
  };
  // The text as alternating plain text and added tokens, in order. Plain segments
  // are never empty; whitespace an lstrip/rstrip token took is in no segment.
  std::vector<Segment> Split(std::string_view text) const;

  // The token with this content / id, nullptr if none.
  const AddedToken* FindContent(std::string_view content) const;
  const AddedToken* FindId(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  // The longest token matching at text[pos] that its flags allow, or nullptr.
  const AddedToken* LongestAt(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, size_t> by_content_;  // content -> index in tokens_
  std::unordered_map<int32_t, size_t> by_id_;           // id -> index in tokens_
  // Tokens by first byte, longest first: the candidates at a position.
  std::vector<size_t> by_first_byte_[256];
};

}  // namespace trainer::data
