// Hugging Face byte-level BPE tokenizers (see hf_tokenizer.h): reading tokenizer.json
// and the slow files, refusing what this implementation would get wrong, and the
// encode / decode pipeline.
#include "trainer/data/hf_tokenizer.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/data/cl100k_pretokenizer.h"

namespace trainer::data {

using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;
using json = nlohmann::json;

namespace {

using PreTokenizerFn = std::vector<Piece> (*)(std::string_view);

// The Split regexes there is a matcher for, exactly as tokenizer.json spells them.
struct KnownSplit {
  const char* name;
  const char* regex;
  PreTokenizerFn fn;
};
const KnownSplit kKnownSplits[] = {
    {"Qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizeQwen2},
    {"Llama 3 (cl100k)",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizeLlama3},
    {"GPT-2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
     PreTokenize},
};
constexpr const char* kGpt2Name = "GPT-2";

std::string Shown(const json& j) {
  std::string s = j.dump();
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

std::string TypeOf(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                      : "";
}

bool FlagTrue(const json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_boolean() && obj[key].get<bool>();
}

// --- the pipeline's parts

// normalizer: null, NFC, or a Sequence of NFCs.
StatusOr<bool> NormalizerIsNfc(const json& n, const std::string& where) {
  if (n.is_null()) return false;
  const std::string type = TypeOf(n);
  if (type == "NFC") return true;
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    bool nfc = false;
    for (size_t i = 0; i < n["normalizers"].size(); ++i) {
      ASSIGN_OR_RETURN(bool one, NormalizerIsNfc(n["normalizers"][i], where + ".normalizers[" +
                                                                          std::to_string(i) + "]"));
      nfc = nfc || one;
      if (!one) return InvalidArgument(where + ": only NFC normalizers are supported");
    }
    return nfc;
  }
  return InvalidArgument(where + ": normalizer " + Shown(type.empty() ? n : json(type)) +
                         " is not supported (only NFC, as Qwen2 has, or none)");
}

// pre_tokenizer: one regex split and a ByteLevel step, in one of these forms:
//   ByteLevel(use_regex true)                          GPT-2's regex
//   Sequence[Split(regex, Isolated), ByteLevel(use_regex false)]   Qwen2, Llama 3
// *name receives the regex's name.
StatusOr<PreTokenizerFn> PreTokenizerFromJson(const json& pt, const std::string& where,
                                              std::string* name) {
  std::vector<std::pair<const json*, std::string>> steps;  // (step, its path)
  if (TypeOf(pt) == "Sequence" && pt.contains("pretokenizers") && pt["pretokenizers"].is_array()) {
    for (size_t i = 0; i < pt["pretokenizers"].size(); ++i) {
      steps.push_back(
          {&pt["pretokenizers"][i], where + ".pretokenizers[" + std::to_string(i) + "]"});
    }
  } else if (!pt.is_null()) {
    steps.push_back({&pt, where});
  }
  PreTokenizerFn fn = nullptr;
  bool byte_level = false;
  for (const auto& [step, path] : steps) {
    const std::string type = TypeOf(*step);
    PreTokenizerFn split = nullptr;
    if (type == "ByteLevel") {
      if (FlagTrue(*step, "add_prefix_space")) {
        return InvalidArgument(path + ": ByteLevel with add_prefix_space true is not supported");
      }
      byte_level = true;
      // HF's default for a missing use_regex is true.
      if (!step->contains("use_regex") || FlagTrue(*step, "use_regex")) {
        split = PreTokenize;
        *name = kGpt2Name;
      }
    } else if (type == "Split") {
      const json& pattern = step->value("pattern", json());
      if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) {
        return InvalidArgument(path + ": Split with pattern " + Shown(pattern) +
                               " is not supported (a Regex is)");
      }
      if (step->value("behavior", std::string()) != "Isolated" || FlagTrue(*step, "invert")) {
        return InvalidArgument(path + ": Split behavior " + Shown(step->value("behavior", json())) +
                               (FlagTrue(*step, "invert") ? " inverted" : "") +
                               " is not supported (Isolated is)");
      }
      const std::string regex = pattern["Regex"].get<std::string>();
      for (const KnownSplit& k : kKnownSplits) {
        if (regex == k.regex) {
          split = k.fn;
          *name = k.name;
        }
      }
      if (split == nullptr) {
        return InvalidArgument(path + ": Split regex " + json(regex).dump() +
                               " is not supported (Qwen2's, Llama 3's and GPT-2's are)");
      }
    } else {
      return InvalidArgument(path + ": pre-tokenizer " + Shown(type.empty() ? *step : json(type)) +
                             " is not supported (Split and ByteLevel are)");
    }
    if (split != nullptr && fn != nullptr) {
      return InvalidArgument(path + ": a second regex split is not supported");
    }
    if (split != nullptr) fn = split;
  }
  if (!byte_level || fn == nullptr) {
    return InvalidArgument(where +
                           ": expected a regex split and ByteLevel (a byte-level BPE "
                           "tokenizer), got " +
                           Shown(pt));
  }
  return fn;
}

// model: type BPE with the options a byte-level BPE uses.
Status CheckBpeOptions(const json& m, const std::string& where) {
  const std::string type = TypeOf(m);
  if (type.empty() ? !m.contains("merges") : type != "BPE") {
    return InvalidArgument(where + ".type: " + (type.empty() ? "missing" : "\"" + type + "\"") +
                           " is not supported: gpt-rank reads byte-level BPE tokenizers (Qwen2, "
                           "Llama 3, GPT-2), not WordPiece, Unigram or WordLevel");
  }
  if (m.contains("dropout") && !m["dropout"].is_null() &&
      !(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0)) {
    return InvalidArgument(where + ".dropout: BPE dropout (" + Shown(m["dropout"]) +
                           ") is not supported");
  }
  if (FlagTrue(m, "byte_fallback")) {
    return InvalidArgument(where + ".byte_fallback: true is not supported (byte-level BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "") {
      return InvalidArgument(where + "." + key + ": " + Shown(m[key]) + " is not supported");
    }
  }
  if (!m.contains("vocab") || !m["vocab"].is_object() || m["vocab"].empty()) {
    return InvalidArgument(where + ".vocab: missing or not an object of token -> id");
  }
  if (!m.contains("merges")) return InvalidArgument(where + ".merges: missing");
  if (!m["merges"].is_array()) return InvalidArgument(where + ".merges: expected an array");
  return Status::Ok();
}

Status LoadVocab(const json& vocab, const std::string& where, ByteLevelBpe* bpe) {
  std::string bytes;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string& token = it.key();
    const json& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      return InvalidArgument(where + ": token " + json(token).dump() +
                             ": id is not an integer in [0, 2^31)");
    }
    if (!ByteLevelBpe::TokenToBytes(token, &bytes) || bytes.empty()) {
      return InvalidArgument(where + ": token " + json(token).dump() +
                             " is empty or has a character outside the byte-level alphabet");
    }
    if (!bpe->AddToken(bytes, static_cast<int32_t>(v.get<int64_t>()))) {
      return InvalidArgument(where + ": id " + std::to_string(v.get<int64_t>()) +
                             " is used by two tokens");
    }
  }
  if (int b = bpe->FindMissingByte(); b >= 0) {
    return InvalidArgument(where + ": no token for byte " + std::to_string(b) +
                           " (a byte-level BPE vocab has all 256)");
  }
  return Status::Ok();
}

// merges: "a b" strings (tokenizers < 0.20) or ["a", "b"] pairs; rank = index.
Status LoadMerges(const json& merges, const std::string& where, ByteLevelBpe* bpe) {
  std::string a, b, first, second;
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
          s.find(' ', space + 1) != std::string::npos) {
        return InvalidArgument(at + ": expected \"first second\", got " + Shown(m));
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return InvalidArgument(at + ": expected \"first second\" or [\"first\", \"second\"], got " +
                             Shown(m));
    }
    if (!ByteLevelBpe::TokenToBytes(a, &first) || !ByteLevelBpe::TokenToBytes(b, &second)) {
      return InvalidArgument(at + ": symbol outside the byte-level alphabet in " + Shown(m));
    }
    if (!bpe->AddMerge(first, second, static_cast<int32_t>(i))) {
      return InvalidArgument(at + ": merge " + Shown(m) +
                             " uses or makes a token that is not in model.vocab");
    }
  }
  return Status::Ok();
}

// One added token from tokenizer.json's added_tokens (id inside) or
// tokenizer_config.json's added_tokens_decoder (id given).
StatusOr<AddedToken> ParseAddedToken(const json& t, const std::string& where, int64_t id) {
  if (!t.is_object()) return InvalidArgument(where + ": expected an object, got " + Shown(t));
  if (id < 0) {
    if (!t.contains("id") || !t["id"].is_number_integer()) {
      return InvalidArgument(where + ".id: missing or not an integer");
    }
    id = t["id"].get<int64_t>();
  }
  if (id < 0 || id > INT32_MAX) {
    return InvalidArgument(where + ": id " + std::to_string(id) + " is not in [0, 2^31)");
  }
  if (!t.contains("content") || !t["content"].is_string() || t["content"] == "") {
    return InvalidArgument(where + ".content: missing, empty or not a string");
  }
  AddedToken a;
  a.id = static_cast<int32_t>(id);
  a.content = t["content"].get<std::string>();
  a.special = FlagTrue(t, "special");
  a.lstrip = FlagTrue(t, "lstrip");
  a.rstrip = FlagTrue(t, "rstrip");
  a.single_word = FlagTrue(t, "single_word");
  a.normalized = FlagTrue(t, "normalized");
  return a;
}

// eos_token of the tokenizer_config.json in dir: a string or {"content": ...}; "" if
// the file or the key is missing (the file is optional beside tokenizer.json).
std::string EosTokenIn(const std::string& dir) {
  const std::string path = coord::JoinPath(dir, "tokenizer_config.json");
  if (!coord::PathExists(path)) return "";
  auto j = coord::LoadJsonFile(path);
  if (!j.ok() || !j->is_object() || !j->contains("eos_token")) return "";
  const json& e = (*j)["eos_token"];
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("content") && e["content"].is_string()) return e["content"];
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading

StatusOr<std::unique_ptr<HfBpeTokenizer>> HfBpeTokenizer::LoadTokenizerJson(
    const std::string& path) {
  auto content = coord::ReadFile(path);
  if (!content.ok()) return content.status().WithContext("Hugging Face tokenizer.json");
  ASSIGN_OR_RETURN(const json root, coord::ParseJson(*content, path));
  const std::string where = path + ": ";
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return InvalidArgument(where +
                           "expected a Hugging Face tokenizer.json (an object with "
                           "\"model\")");
  }
  std::unique_ptr<HfBpeTokenizer> tok(new HfBpeTokenizer());
  tok->source_ = path;
  const json& model = root["model"];
  RETURN_IF_ERROR(CheckBpeOptions(model, where + "model"));
  tok->bpe_.set_ignore_merges(FlagTrue(model, "ignore_merges"));
  tok->bpe_.Reserve(model["vocab"].size(), model["merges"].size());
  RETURN_IF_ERROR(LoadVocab(model["vocab"], where + "model.vocab", &tok->bpe_));
  RETURN_IF_ERROR(LoadMerges(model["merges"], where + "model.merges", &tok->bpe_));

  ASSIGN_OR_RETURN(const bool nfc,
                   NormalizerIsNfc(root.value("normalizer", json()), where + "normalizer"));
  if (nfc) {
    ASSIGN_OR_RETURN(tok->nfc_, NfcNormalizer::Create());
  }
  ASSIGN_OR_RETURN(tok->pre_tokenize_,
                   PreTokenizerFromJson(root.value("pre_tokenizer", json()),
                                        where + "pre_tokenizer", &tok->pre_tokenizer_name_));
  const json& decoder = root.value("decoder", json());
  if (TypeOf(decoder) != "ByteLevel") {
    return InvalidArgument(where + "decoder: " + Shown(decoder) +
                           " is not supported (ByteLevel is)");
  }
  // post_processor: Encode adds no template tokens (Qwen's ByteLevel adds none).

  const json& added = root.value("added_tokens", json::array());
  if (!added.is_array()) return InvalidArgument(where + "added_tokens: expected an array");
  for (size_t i = 0; i < added.size(); ++i) {
    ASSIGN_OR_RETURN(
        AddedToken a,
        ParseAddedToken(added[i], where + "added_tokens[" + std::to_string(i) + "]", -1));
    tok->added_.Add(a);
  }
  tok->Finish(EosTokenIn(coord::Dirname(path)));
  return tok;
}

StatusOr<std::unique_ptr<HfBpeTokenizer>> HfBpeTokenizer::LoadSlowFiles(const std::string& dir) {
  const std::string config_path = coord::JoinPath(dir, "tokenizer_config.json");
  auto config = coord::LoadJsonFile(config_path);
  if (!config.ok()) {
    return config.status().WithContext(
        "the slow tokenizer files need tokenizer_config.json for the tokenizer class");
  }
  const std::string where = config_path + ": ";
  const std::string cls =
      config->is_object() ? config->value("tokenizer_class", std::string()) : std::string();
  std::unique_ptr<HfBpeTokenizer> tok(new HfBpeTokenizer());
  tok->source_ = dir;
  if (cls == "Qwen2Tokenizer" || cls == "Qwen2TokenizerFast") {
    tok->pre_tokenize_ = PreTokenizeQwen2;
    tok->pre_tokenizer_name_ = "Qwen2";
    ASSIGN_OR_RETURN(tok->nfc_, NfcNormalizer::Create());
  } else if (cls == "GPT2Tokenizer" || cls == "GPT2TokenizerFast") {
    tok->pre_tokenize_ = PreTokenize;
    tok->pre_tokenizer_name_ = kGpt2Name;
  } else {
    return InvalidArgument(where + "tokenizer_class " +
                           Shown(config->value("tokenizer_class", json())) +
                           " is not supported with vocab.json + merges.txt (Qwen2Tokenizer and "
                           "GPT2Tokenizer are; or give tokenizer.json)");
  }
  int32_t eod = -1, entries = 0;
  RETURN_IF_ERROR(LoadVocabJson(coord::JoinPath(dir, "vocab.json"), &tok->bpe_, &eod, &entries));
  RETURN_IF_ERROR(LoadMergesTxt(coord::JoinPath(dir, "merges.txt"), false, &tok->bpe_));
  const json& decoder = config->value("added_tokens_decoder", json::object());
  if (!decoder.is_object()) {
    return InvalidArgument(where + "added_tokens_decoder: expected an object of id -> token");
  }
  for (auto it = decoder.begin(); it != decoder.end(); ++it) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(it.key(), &used);
      if (used != it.key().size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    const std::string at = where + "added_tokens_decoder." + it.key();
    if (id < 0) return InvalidArgument(at + ": the key is not a token id");
    ASSIGN_OR_RETURN(AddedToken a, ParseAddedToken(it.value(), at, id));
    tok->added_.Add(a);
  }
  tok->Finish(EosTokenIn(dir));
  return tok;
}

void HfBpeTokenizer::Finish(const std::string& eos_token) {
  int32_t max_id = bpe_.max_id();
  for (const AddedToken& a : added_.tokens()) max_id = std::max(max_id, a.id);
  vocab_size_ = max_id + 1;
  eod_id_ = TokenId("<|endoftext|>");
  if (eod_id_ < 0 && !eos_token.empty()) eod_id_ = TokenId(eos_token);
}

// ---------------------------------------------------------------------------
// Encode / decode

std::vector<int32_t> HfBpeTokenizer::Encode(std::string_view text) {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for (const AddedTokens::Segment& seg : added_.Split(text)) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
      continue;
    }
    std::string_view part = text.substr(seg.offset, seg.length);
    if (nfc_) part = nfc_->Normalize(part, &scratch_);  // may view scratch_, used up below
    for (const Piece& p : pre_tokenize_(part)) {
      bpe_.EncodePiece(part.substr(p.offset, p.length), &ids);
    }
  }
  return ids;
}

StatusOr<std::string> HfBpeTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    const std::string& bytes = TokenBytes(id);
    if (bytes.empty()) {
      return InvalidArgument("token id " + std::to_string(id) + " is not in the vocab (size " +
                             std::to_string(vocab_size_) + ")");
    }
    out += bytes;
  }
  return out;
}

const std::string& HfBpeTokenizer::TokenBytes(int32_t id) const {
  if (const AddedToken* a = added_.FindId(id)) return a->content;
  return bpe_.TokenBytes(id);
}

int32_t HfBpeTokenizer::TokenId(std::string_view token) const {
  if (const AddedToken* a = added_.FindContent(token)) return a->id;
  return bpe_.Find(std::string(token));
}

std::string HfBpeTokenizer::Describe() const {
  return "Hugging Face byte-level BPE from " + source_ + " (" + std::to_string(vocab_size_) +
         " ids, " + std::to_string(added_.tokens().size()) + " added tokens, " +
         pre_tokenizer_name_ + " pre-tokenizer" + (nfc_ ? ", NFC" : "") + ")";
}

}  // namespace trainer::data
