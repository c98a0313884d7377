// cl100k-style pre-tokenizer (see cl100k_pretokenizer.h): a hand-written matcher
// that tries the regex's alternatives in order at each position, with the
// backtracking each one would do.
#include "trainer/data/cl100k_pretokenizer.h"

#include "trainer/data/unicode_ranges.h"

namespace trainer::data {

namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass Classify(char32_t cp) {
  if (IsLetter(cp)) return CharClass::kLetter;
  if (IsNumber(cp)) return CharClass::kNumber;
  if (IsSpace(cp)) return CharClass::kSpace;
  return CharClass::kOther;  // [^\s\p{L}\p{N}], U+FFFD from bad bytes included
}

bool IsCrLf(char32_t cp) { return cp == U'\r' || cp == U'\n'; }

// Length in characters of the contraction ('s 't 're 've 'm 'll 'd, any ASCII case)
// at i, or 0.
size_t ContractionAt(const std::vector<char32_t>& cps, size_t i) {
  const size_t n = cps.size();
  if (cps[i] != U'\'' || i + 1 >= n) return 0;
  const char32_t a = cps[i + 1] < 0x80 ? (cps[i + 1] | 0x20) : 0;
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= n) return 0;
  const char32_t b = cps[i + 2] < 0x80 ? (cps[i + 2] | 0x20) : 0;
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// End (exclusive, in characters) of the match that starts at character i.
size_t MatchEnd(const std::vector<char32_t>& cps, const std::vector<CharClass>& cls, size_t i,
                size_t max_digits) {
  const size_t n = cps.size();
  if (size_t len = ContractionAt(cps, i)) return i + len;
  // [^\r\n\p{L}\p{N}]?\p{L}+: one optional non-letter, non-number, non-newline
  // (space, tab, punctuation ...) in front of a run of letters.
  size_t j = i;
  if (cls[i] != CharClass::kLetter && cls[i] != CharClass::kNumber && !IsCrLf(cps[i]) &&
      i + 1 < n) {
    j = i + 1;
  }
  if (cls[j] == CharClass::kLetter) {
    size_t end = j + 1;
    while (end < n && cls[end] == CharClass::kLetter) ++end;
    return end;
  }
  // (Without the optional character the run would start at i, which is no letter.)
  // \p{N}{1,D}
  if (cls[i] == CharClass::kNumber) {
    size_t end = i + 1;
    while (end < n && end - i < max_digits && cls[end] == CharClass::kNumber) ++end;
    return end;
  }
  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`: dropping the optional space cannot help when the
  // next character is no "other" (the space itself is none).
  j = (cps[i] == U' ' && i + 1 < n) ? i + 1 : i;
  if (cls[j] == CharClass::kOther) {
    size_t end = j + 1;
    while (end < n && cls[end] == CharClass::kOther) ++end;
    while (end < n && IsCrLf(cps[end])) ++end;
    return end;
  }
  // cps[i] is whitespace: every other class matched above. k ends its run.
  size_t k = i;
  while (k < n && cls[k] == CharClass::kSpace) ++k;
  // \s*[\r\n]+: \s* backtracks from the whole run to the last newline in it, and
  // [\r\n]+ takes that newline (the one after it is no newline, or it is the last).
  for (size_t m = k; m > i; --m) {
    if (IsCrLf(cps[m - 1])) return m;
  }
  // \s+(?!\S): the whole run at the end of the text, else the run minus its last
  // character (which then prefixes the next word); a single whitespace before a
  // non-space fails the lookahead and falls to \s+.
  if (k == n) return n;
  if (k - i >= 2) return k - 1;
  return k;
}

}  // namespace

std::vector<Piece> PreTokenizeCl100k(std::string_view text, int max_digits) {
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
  const size_t digits = max_digits < 1 ? 1 : static_cast<size_t>(max_digits);
  for (size_t i = 0; i < cps.size();) {
    size_t end = MatchEnd(cps, cls, i, digits);
    pieces.push_back({byte_offset[i], byte_offset[end] - byte_offset[i]});
    i = end;
  }
  return pieces;
}

}  // namespace trainer::data
