// The pre-tokenizer regex of OpenAI's cl100k_base family, by hand over UTF-8 code
// points, as gpt2_pretokenizer.h does for GPT-2's:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with D = 1 for Qwen2 / 2.5 / 3 (digits one at a time) and D = 3 for Llama 3 and
// cl100k_base. Classes are JavaScript's (unicode_ranges.h), since the reference is
// transformers.js under node; "(?i:...)" is ASCII-caseless, as transformers.js
// rewrites it. Pure functions.
#pragma once

#include <string_view>
#include <vector>

#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {

// Byte ranges of the matches, in order; they tile the text exactly.
std::vector<Piece> PreTokenizeCl100k(std::string_view text, int max_digits);
inline std::vector<Piece> PreTokenizeQwen2(std::string_view text) {
  return PreTokenizeCl100k(text, 1);
}
inline std::vector<Piece> PreTokenizeLlama3(std::string_view text) {
  return PreTokenizeCl100k(text, 3);
}

}  // namespace trainer::data
