// GPT-2 byte-level BPE (see bpe_tokenizer.h): GPT-2's regex pre-tokenizer over the
// shared byte-level BPE model.
#include "trainer/data/bpe_tokenizer.h"

#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {

coord::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::Load(
    const std::string& vocab_path, const std::string& merges_path) {
  std::unique_ptr<Gpt2Tokenizer> tok(new Gpt2Tokenizer());
  RETURN_IF_ERROR(LoadVocabJson(vocab_path, &tok->bpe_, &tok->eod_id_, &tok->vocab_size_));
  RETURN_IF_ERROR(LoadMergesTxt(merges_path, /*require_header=*/true, &tok->bpe_));
  return tok;
}

std::vector<int32_t> Gpt2Tokenizer::Encode(std::string_view text) {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for (const Piece& p : PreTokenize(text)) bpe_.EncodePiece(text.substr(p.offset, p.length), &ids);
  return ids;
}

coord::StatusOr<std::string> Gpt2Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    const std::string& bytes = bpe_.TokenBytes(id);
    if (bytes.empty()) {
      return coord::InvalidArgument("token id " + std::to_string(id) +
                                    " is not in the vocab (size " + std::to_string(vocab_size_) +
                                    ")");
    }
    out += bytes;
  }
  return out;
}

std::string Gpt2Tokenizer::Describe() const {
  return "GPT-2 BPE (" + std::to_string(vocab_size_) + " tokens)";
}

}  // namespace trainer::data
