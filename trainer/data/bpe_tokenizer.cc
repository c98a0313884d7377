// GPT-2 byte-level BPE (see bpe_tokenizer.h). Tokens are kept as raw bytes and
// merges as pairs of token ids: GPT-2's byte-to-unicode alphabet is a bijection,
// so merging ids is isomorphic to the references' merging of unicode strings.
#include "trainer/data/bpe_tokenizer.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {

using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;

namespace {

// bytes_to_unicode() of OpenAI's encoder.py: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100.. in byte order, so that no token
// contains whitespace or control characters. Returns unicode -> byte (-1 = none).
std::vector<int> UnicodeToByte() {
  std::vector<int> table(0x100 + 256, -1);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    table[printable ? b : 0x100 + n++] = b;
  }
  return table;
}

// Turns a token as vocab.json / merges.txt spell it into its raw bytes.
bool TokenToBytes(std::string_view token, std::string* bytes) {
  static const std::vector<int> kUnicodeToByte = UnicodeToByte();
  bytes->clear();
  for (size_t pos = 0; pos < token.size();) {
    Utf8Char c = DecodeUtf8At(token, pos);
    if (c.cp >= kUnicodeToByte.size() || kUnicodeToByte[c.cp] < 0) return false;
    bytes->push_back(static_cast<char>(kUnicodeToByte[c.cp]));
    pos += c.bytes;
  }
  return true;
}

}  // namespace

StatusOr<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::Load(const std::string& vocab_path,
                                                             const std::string& merges_path) {
  std::unique_ptr<Gpt2Tokenizer> tok(new Gpt2Tokenizer());
  RETURN_IF_ERROR(tok->LoadVocab(vocab_path));
  RETURN_IF_ERROR(tok->LoadMerges(merges_path));
  return tok;
}

Status Gpt2Tokenizer::LoadVocab(const std::string& path) {
  auto content = coord::ReadFile(path);
  if (!content.ok()) return content.status().WithContext("GPT-2 vocab file");
  ASSIGN_OR_RETURN(const nlohmann::json vocab, coord::ParseJson(*content, path));
  if (!vocab.is_object() || vocab.empty()) {
    return InvalidArgument(path + ": expected a JSON object of token -> id (GPT-2's vocab.json)");
  }
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string& token = it.key();
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return InvalidArgument(path + ": token \"" + token + "\": id is not an integer in [0, 2^31)");
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    if (!TokenToBytes(token, &bytes) || bytes.empty()) {
      return InvalidArgument(
          path + ": token \"" + token +
          "\" is empty or has a character outside GPT-2's byte-to-unicode alphabet");
    }
    if (static_cast<size_t>(id) >= id_to_bytes_.size()) id_to_bytes_.resize(id + 1);
    if (!id_to_bytes_[id].empty()) {
      return InvalidArgument(path + ": id " + std::to_string(id) + " is used by two tokens");
    }
    id_to_bytes_[id] = bytes;
    bytes_to_id_[bytes] = id;
    if (token == "<|endoftext|>") eod_id_ = id;
  }
  vocab_size_ = static_cast<int32_t>(vocab.size());
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
    if (it == bytes_to_id_.end()) {
      return InvalidArgument(path + ": no token for byte " + std::to_string(b) +
                             " (a byte-level BPE vocab has all 256)");
    }
    byte_id_[b] = it->second;
  }
  return Status::Ok();
}

// merges.txt: "#version: 0.2", then one "first second" per line, highest
// priority first. As in the references (bpe_data.split("\n")[1:-1]), the rank is
// the line's index after the header, and an empty line takes a rank but merges nothing.
Status Gpt2Tokenizer::LoadMerges(const std::string& path) {
  auto content = coord::ReadFile(path);
  if (!content.ok()) return content.status().WithContext("GPT-2 merges file");
  const std::string& text = *content;
  size_t pos = 0;
  int line_no = 0;
  std::string first, second;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (line_no == 1) {
      if (line.substr(0, 8) != "#version") {
        return InvalidArgument(where +
                               "expected the header \"#version: 0.2\" (GPT-2's merges.txt)");
      }
      continue;
    }
    const size_t a = line.find_first_not_of(" \t");
    if (a == std::string_view::npos) continue;  // empty line: a rank with no merge
    const size_t a_end = line.find_first_of(" \t", a);
    const size_t b = a_end == std::string_view::npos ? a_end : line.find_first_not_of(" \t", a_end);
    const size_t b_end = b == std::string_view::npos ? b : line.find_first_of(" \t", b);
    if (b == std::string_view::npos ||
        (b_end != std::string_view::npos && line.find_first_not_of(" \t", b_end) != line.npos)) {
      return InvalidArgument(where + "expected two symbols separated by a space, got \"" +
                             std::string(line) + "\"");
    }
    if (!TokenToBytes(line.substr(a, a_end - a), &first) ||
        !TokenToBytes(line.substr(b, b_end == line.npos ? line.npos : b_end - b), &second)) {
      return InvalidArgument(where + "symbol outside GPT-2's byte-to-unicode alphabet");
    }
    auto fi = bytes_to_id_.find(first), si = bytes_to_id_.find(second),
         mi = bytes_to_id_.find(first + second);
    if (fi == bytes_to_id_.end() || si == bytes_to_id_.end() || mi == bytes_to_id_.end()) {
      return InvalidArgument(where + "merge \"" + std::string(line) +
                             "\" uses or makes a token that is not in the vocab file");
    }
    // A repeated pair keeps its last rank, as dict(zip(merges, range(...))) does.
    merges_[PairKey(fi->second, si->second)] = {line_no - 2, mi->second};
  }
  if (line_no == 0) return InvalidArgument(path + ": empty (expected GPT-2's merges.txt)");
  return Status::Ok();
}

// bpe() of the references: repeatedly merge every occurrence (left to right,
// non-overlapping) of the adjacent pair with the lowest rank, until none has one.
void Gpt2Tokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* out) {
  std::string key(piece);
  auto hit = cache_.find(key);
  if (hit != cache_.end()) {
    out->insert(out->end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> word;  // (symbols) token ids, one per byte at first
  word.reserve(piece.size());
  for (unsigned char c : piece) word.push_back(byte_id_[c]);
  std::vector<int32_t> merged;
  while (word.size() >= 2) {
    const Merge* best = nullptr;
    int32_t first = 0, second = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(PairKey(word[i], word[i + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best == nullptr) break;
    merged.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(best->merged_id);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word.swap(merged);
  }
  out->insert(out->end(), word.begin(), word.end());
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(std::move(key), std::move(word));
}

std::vector<int32_t> Gpt2Tokenizer::Encode(std::string_view text) {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for (const Piece& p : PreTokenize(text)) EncodePiece(text.substr(p.offset, p.length), &ids);
  return ids;
}

StatusOr<std::string> Gpt2Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size() || id_to_bytes_[id].empty()) {
      return InvalidArgument("token id " + std::to_string(id) + " is not in the vocab (size " +
                             std::to_string(vocab_size_) + ")");
    }
    out += id_to_bytes_[id];
  }
  return out;
}

const std::string& Gpt2Tokenizer::TokenBytes(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size()) return kEmpty;
  return id_to_bytes_[id];
}

}  // namespace trainer::data
