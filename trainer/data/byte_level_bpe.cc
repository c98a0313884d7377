// Byte-level BPE (see byte_level_bpe.h): the model, and the vocab.json / merges.txt
// readers whose error texts GPT-2's tokenizer has always given.
#include "trainer/data/byte_level_bpe.h"

#include <climits>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {

using coord::InvalidArgument;
using coord::Status;

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

}  // namespace

// ---------------------------------------------------------------------------
// The model

bool ByteLevelBpe::TokenToBytes(std::string_view token, std::string* bytes) {
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

void ByteLevelBpe::Reserve(size_t tokens, size_t merges) {
  bytes_to_id_.reserve(tokens);
  id_to_bytes_.reserve(tokens);
  merges_.reserve(merges);
}

bool ByteLevelBpe::AddToken(const std::string& bytes, int32_t id) {
  if (static_cast<size_t>(id) >= id_to_bytes_.size()) id_to_bytes_.resize(id + 1);
  if (!id_to_bytes_[id].empty()) return false;
  id_to_bytes_[id] = bytes;
  bytes_to_id_[bytes] = id;
  return true;
}

int ByteLevelBpe::FindMissingByte() {
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
    if (it == bytes_to_id_.end()) return b;
    byte_id_[b] = it->second;
  }
  return -1;
}

bool ByteLevelBpe::AddMerge(const std::string& first, const std::string& second, int32_t rank) {
  auto fi = bytes_to_id_.find(first), si = bytes_to_id_.find(second),
       mi = bytes_to_id_.find(first + second);
  if (fi == bytes_to_id_.end() || si == bytes_to_id_.end() || mi == bytes_to_id_.end()) {
    return false;
  }
  merges_[PairKey(fi->second, si->second)] = {rank, mi->second};
  return true;
}

int32_t ByteLevelBpe::Find(const std::string& bytes) const {
  auto it = bytes_to_id_.find(bytes);
  return it == bytes_to_id_.end() ? -1 : it->second;
}

const std::string& ByteLevelBpe::TokenBytes(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size()) return kEmpty;
  return id_to_bytes_[id];
}

// bpe() of the references. Merging every occurrence of the best pair per pass gives
// what Hugging Face's and transformers.js's priority queues give (lowest rank, then
// leftmost, first): a merge's result only takes part in later, higher-ranked merges.
void ByteLevelBpe::EncodePiece(std::string_view piece, std::vector<int32_t>* out) {
  std::string key(piece);
  auto hit = cache_.find(key);
  if (hit != cache_.end()) {
    out->insert(out->end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> word;  // (symbols) token ids, one per byte at first
  if (ignore_merges_) {
    auto whole = bytes_to_id_.find(key);
    if (whole != bytes_to_id_.end()) word.push_back(whole->second);
  }
  if (word.empty()) {
    word.reserve(piece.size());
    for (unsigned char c : piece) word.push_back(byte_id_[c]);
  }
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

// ---------------------------------------------------------------------------
// vocab.json / merges.txt

Status LoadVocabJson(const std::string& path, ByteLevelBpe* bpe, int32_t* eod_id,
                     int32_t* num_entries) {
  auto content = coord::ReadFile(path);
  if (!content.ok()) return content.status().WithContext("GPT-2 vocab file");
  ASSIGN_OR_RETURN(const nlohmann::json vocab, coord::ParseJson(*content, path));
  if (!vocab.is_object() || vocab.empty()) {
    return InvalidArgument(path + ": expected a JSON object of token -> id (GPT-2's vocab.json)");
  }
  *eod_id = -1;
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string& token = it.key();
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return InvalidArgument(path + ": token \"" + token + "\": id is not an integer in [0, 2^31)");
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    if (!ByteLevelBpe::TokenToBytes(token, &bytes) || bytes.empty()) {
      return InvalidArgument(
          path + ": token \"" + token +
          "\" is empty or has a character outside GPT-2's byte-to-unicode alphabet");
    }
    if (!bpe->AddToken(bytes, id)) {
      return InvalidArgument(path + ": id " + std::to_string(id) + " is used by two tokens");
    }
    if (token == "<|endoftext|>") *eod_id = id;
  }
  *num_entries = static_cast<int32_t>(vocab.size());
  if (int b = bpe->FindMissingByte(); b >= 0) {
    return InvalidArgument(path + ": no token for byte " + std::to_string(b) +
                           " (a byte-level BPE vocab has all 256)");
  }
  return Status::Ok();
}

// As in GPT-2's references (bpe_data.split("\n")[1:-1]), the rank is the line's
// index after the header, and an empty line takes a rank but merges nothing.
Status LoadMergesTxt(const std::string& path, bool require_header, ByteLevelBpe* bpe) {
  auto content = coord::ReadFile(path);
  if (!content.ok()) return content.status().WithContext("GPT-2 merges file");
  const std::string& text = *content;
  size_t pos = 0;
  int line_no = 0, rank = 0;
  std::string first, second;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (line_no == 1 && (require_header || line.substr(0, 8) == "#version")) {
      if (line.substr(0, 8) != "#version") {
        return InvalidArgument(where +
                               "expected the header \"#version: 0.2\" (GPT-2's merges.txt)");
      }
      continue;
    }
    ++rank;
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
    if (!ByteLevelBpe::TokenToBytes(line.substr(a, a_end - a), &first) ||
        !ByteLevelBpe::TokenToBytes(line.substr(b, b_end == line.npos ? line.npos : b_end - b),
                                    &second)) {
      return InvalidArgument(where + "symbol outside GPT-2's byte-to-unicode alphabet");
    }
    if (!bpe->AddMerge(first, second, rank)) {
      return InvalidArgument(where + "merge \"" + std::string(line) +
                             "\" uses or makes a token that is not in the vocab file");
    }
  }
  if (line_no == 0) return InvalidArgument(path + ": empty (expected GPT-2's merges.txt)");
  return Status::Ok();
}

}  // namespace trainer::data
