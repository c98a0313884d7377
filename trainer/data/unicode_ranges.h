// Unicode classes for GPT-2's pre-tokenizer regex: \p{L}, \p{N} and \s, as
// code point range tables generated from the reference encoder's regex engine
// (trainer/tools/gen_unicode_ranges.js -> unicode_ranges.cc). Pure functions.
#pragma once

#include <algorithm>

namespace trainer::data {

struct CodePointRange {
  char32_t first;  // inclusive
  char32_t last;   // inclusive
};

extern const char kUnicodeTablesVersion[];  // e.g. "17.0"
extern const CodePointRange kLetterRanges[];
extern const int kLetterRangeCount;
extern const CodePointRange kNumberRanges[];
extern const int kNumberRangeCount;
extern const CodePointRange kSpaceRanges[];
extern const int kSpaceRangeCount;

inline bool InRanges(const CodePointRange* ranges, int count, char32_t cp) {
  // First range whose last >= cp; cp is in the table iff that range starts <= cp.
  const CodePointRange* end = ranges + count;
  const CodePointRange* it = std::lower_bound(
      ranges, end, cp, [](const CodePointRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= cp;
}

// ASCII is by far the common case in training text; answer it without a search.
inline bool IsLetter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return InRanges(kLetterRanges, kLetterRangeCount, cp);
}
inline bool IsNumber(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return InRanges(kNumberRanges, kNumberRangeCount, cp);
}
// JavaScript's \s (the reference encoder runs on node): U+FEFF yes, U+0085 no.
// OpenAI's Python encoder (`regex` module, White_Space) differs there, e.g. on those two.
inline bool IsSpace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return InRanges(kSpaceRanges, kSpaceRangeCount, cp);
}

}  // namespace trainer::data
