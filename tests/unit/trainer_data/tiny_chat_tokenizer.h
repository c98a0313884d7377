// A Qwen2-shaped tokenizer.json over the tiny vocab (tiny_vocab.h: 256 byte tokens,
// "hello", " wor" ...) with Qwen's added tokens <|endoftext|> (263), <|im_start|>
// (264) and <|im_end|> (265), for chat template and SFT tests; no download.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tiny_vocab.h"

namespace trainer::data::testing {

constexpr int kTinyEndOfText = 263, kTinyImStart = 264, kTinyImEnd = 265;

inline nlohmann::json TinyChatTokenizerJson() {
  using json = nlohmann::json;
  const TinyVocab tiny = MakeTinyVocab();
  json vocab = json::parse(tiny.vocab_json);
  vocab.erase("<|endoftext|>");  // an added token, as in Qwen's file
  json merges = json::array();
  size_t pos = tiny.merges_txt.find('\n') + 1;
  while (pos < tiny.merges_txt.size()) {
    const size_t nl = tiny.merges_txt.find('\n', pos);
    merges.push_back(tiny.merges_txt.substr(pos, nl - pos));
    pos = nl + 1;
  }
  auto added = [](int id, const char* content) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  const char* regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return json{{"version", "1.0"},
              {"added_tokens", json::array({added(kTinyEndOfText, "<|endoftext|>"),
                                            added(kTinyImStart, "<|im_start|>"),
                                            added(kTinyImEnd, "<|im_end|>")})},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers", json::array({{{"type", "Split"},
                                                {"pattern", {{"Regex", regex}}},
                                                {"behavior", "Isolated"},
                                                {"invert", false}},
                                               {{"type", "ByteLevel"},
                                                {"add_prefix_space", false},
                                                {"trim_offsets", false},
                                                {"use_regex", false}}})}}},
              {"post_processor", {{"type", "ByteLevel"}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}}}};
}

}  // namespace trainer::data::testing
