// A small byte-level BPE vocab for tests that must not depend on the fetched
// GPT-2 files: the 256 byte tokens (id = byte), seven merges spelling "hello"
// and " wor", and <|endoftext|> (id 263).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace trainer::data::testing {

// GPT-2's byte -> unicode alphabet, spelled independently of the library.
inline std::string ByteToken(int b) {
  static std::vector<int> cps = [] {
    std::vector<int> cp(256);
    int n = 0;
    for (int i = 0; i < 256; ++i) {
      bool keep = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174;
      cp[i] = keep ? i : 256 + n++;
    }
    return cp;
  }();
  std::string out;
  int c = cps[b];
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

// 256 byte tokens (id = byte), then the merges' results, then <|endoftext|>.
struct TinyVocab {
  std::string vocab_json;
  std::string merges_txt;
};
inline TinyVocab MakeTinyVocab() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteToken(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}};
  std::string txt = "#version: 0.2\n";
  int id = 256;
  for (const auto& [a, b] : merges) {
    txt += a + " " + b + "\n";
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
  }
  vocab["<|endoftext|>"] = id;
  return {vocab.dump(), txt};
}

}  // namespace trainer::data::testing
