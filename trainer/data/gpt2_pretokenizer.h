// GPT-2's pre-tokenizer, by hand over UTF-8 code points: the pieces that
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches (OpenAI's encoder.py, npm gpt-3-encoder's Encoder.js), then BPE runs on
// each piece. Also the UTF-8 helpers the tokenizer shares. Pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace trainer::data {

struct Utf8Char {
  char32_t cp;   // the code point; 0xFFFD for a byte that starts no valid sequence
  size_t bytes;  // 1..4 bytes consumed from the input
};

// Decodes one character at text[pos] (pos < text.size()). Invalid or truncated
// sequences consume one byte and read as U+FFFD, so every input byte lands in
// exactly one piece and Encode/Decode round-trips arbitrary bytes.
Utf8Char DecodeUtf8At(std::string_view text, size_t pos);

// Byte ranges [offset, offset + length) of the regex matches, in order; they
// tile the text exactly (every byte in one piece).
struct Piece {
  size_t offset;
  size_t length;
};
std::vector<Piece> PreTokenize(std::string_view text);

// Replaces invalid UTF-8 with U+FFFD, one per offending byte (for showing
// decoded tokens to people; a token boundary can split a character).
std::string SanitizeUtf8(std::string_view bytes);

}  // namespace trainer::data
