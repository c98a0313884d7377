// GPT-2 pre-tokenizer (see gpt2_pretokenizer.h): a hand-written matcher for the
// reference regex, alternative by alternative, including the backtracking of
// \s+(?!\S) that leaves the last space of a run to start the next word.
#include "trainer/data/gpt2_pretokenizer.h"

#include "trainer/data/unicode_ranges.h"

namespace trainer::data {

// --- UTF-8

Utf8Char DecodeUtf8At(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t avail = text.size() - pos;
  const unsigned char b0 = s[0];
  if (b0 < 0x80) return {b0, 1};
  size_t len;
  char32_t cp, min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {0xFFFD, 1};
  }
  if (avail < len) return {0xFFFD, 1};
  for (size_t k = 1; k < len; ++k) {
    if ((s[k] & 0xC0) != 0x80) return {0xFFFD, 1};
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0xFFFD, 1};
  return {cp, len};
}

static void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    Utf8Char c = DecodeUtf8At(bytes, pos);
    AppendUtf8(c.cp, &out);
    pos += c.bytes;
  }
  return out;
}

// --- pre-tokenizer

namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass Classify(char32_t cp) {
  if (IsLetter(cp)) return CharClass::kLetter;
  if (IsNumber(cp)) return CharClass::kNumber;
  if (IsSpace(cp)) return CharClass::kSpace;
  return CharClass::kOther;  // [^\s\p{L}\p{N}], U+FFFD from bad bytes included
}

// Length in characters of the contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
// Case-sensitive and ASCII-only, as in the reference pattern.
size_t ContractionAt(const std::vector<char32_t>& cps, size_t i) {
  const size_t n = cps.size();
  if (cps[i] != U'\'' || i + 1 >= n) return 0;
  const char32_t a = cps[i + 1];
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= n) return 0;
  const char32_t b = cps[i + 2];
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// End (exclusive, in characters) of the match that starts at character i.
size_t MatchEnd(const std::vector<char32_t>& cps, const std::vector<CharClass>& cls, size_t i) {
  const size_t n = cps.size();
  if (size_t len = ContractionAt(cps, i)) return i + len;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the classes are disjoint, so the
  // first character after the optional space picks the alternative. When that
  // character is itself whitespace, dropping the optional space cannot help
  // (a space is none of the three classes), so we fall through to \s.
  size_t j = (cps[i] == U' ' && i + 1 < n) ? i + 1 : i;
  if (cls[j] != CharClass::kSpace) {
    const CharClass run = cls[j];
    size_t end = j + 1;
    while (end < n && cls[end] == run) ++end;
    return end;
  }
  // cps[i] is whitespace. \s+(?!\S): the whole run if it ends the text, else the
  // run minus its last character (which then prefixes the next word); a single
  // whitespace before a non-space fails the lookahead and falls to \s+.
  size_t k = i;
  while (k < n && cls[k] == CharClass::kSpace) ++k;
  if (k == n) return n;
  if (k - i >= 2) return k - 1;
  return i + 1;
}

}  // namespace

std::vector<Piece> PreTokenize(std::string_view text) {
  // Decode once: code points, their classes, and their byte offsets.
  std::vector<char32_t> cps;        // (n)
  std::vector<CharClass> cls;       // (n)
  std::vector<size_t> byte_offset;  // (n + 1)
  cps.reserve(text.size());
  cls.reserve(text.size());
  byte_offset.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    Utf8Char c = DecodeUtf8At(text, pos);
    cps.push_back(c.cp);
    cls.push_back(Classify(c.cp));
    byte_offset.push_back(pos);
    pos += c.bytes;
  }
  byte_offset.push_back(text.size());

  std::vector<Piece> pieces;
  for (size_t i = 0; i < cps.size();) {
    size_t end = MatchEnd(cps, cls, i);
    pieces.push_back({byte_offset[i], byte_offset[end] - byte_offset[i]});
    i = end;
  }
  return pieces;
}

}  // namespace trainer::data
