// Added-token splitting (see added_tokens.h). Plain scanning with a first-byte
// table: the tokens are few (Qwen has 26, all starting with '<') and text seldom
// holds their first byte, so a trie would not pay for itself.
#include "trainer/data/added_tokens.h"

#include <algorithm>

#include "trainer/data/gpt2_pretokenizer.h"
#include "trainer/data/unicode_ranges.h"

namespace trainer::data {

namespace {

// HF's \w: letters, numbers, '_' (its single_word test looks at one character).
bool IsWordChar(char32_t cp) { return cp == U'_' || IsLetter(cp) || IsNumber(cp); }

// The character that ends at byte `end` of text[floor, end) (end > floor), and
// where it starts; a stray byte reads as U+FFFD of one byte.
Utf8Char CharBefore(std::string_view text, size_t floor, size_t end, size_t* start) {
  size_t s = end - 1;
  while (s > floor && end - s < 4 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
  Utf8Char c = DecodeUtf8At(text, s);
  if (s + c.bytes != end) {
    s = end - 1;
    c = {0xFFFD, 1};
  }
  *start = s;
  return c;
}

}  // namespace

bool AddedTokens::Add(const AddedToken& token) {
  if (token.content.empty() || by_content_.count(token.content) > 0) return false;
  const size_t index = tokens_.size();
  tokens_.push_back(token);
  by_content_[token.content] = index;
  by_id_.emplace(token.id, index);
  std::vector<size_t>& bucket = by_first_byte_[static_cast<unsigned char>(token.content[0])];
  bucket.push_back(index);
  std::stable_sort(bucket.begin(), bucket.end(), [this](size_t a, size_t b) {
    return tokens_[a].content.size() > tokens_[b].content.size();
  });
  return true;
}

const AddedToken* AddedTokens::FindContent(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::FindId(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::LongestAt(std::string_view text, size_t pos) const {
  for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const AddedToken& t = tokens_[index];
    if (text.compare(pos, t.content.size(), t.content) != 0) continue;
    if (t.single_word) {
      const size_t end = pos + t.content.size();
      size_t unused;
      if ((pos > 0 && IsWordChar(CharBefore(text, 0, pos, &unused).cp)) ||
          (end < text.size() && IsWordChar(DecodeUtf8At(text, end).cp))) {
        continue;
      }
    }
    return &t;
  }
  return nullptr;
}

std::vector<AddedTokens::Segment> AddedTokens::Split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;  // start of the pending plain text
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* t = by_first_byte_[static_cast<unsigned char>(text[pos])].empty()
                              ? nullptr
                              : LongestAt(text, pos);
    if (t == nullptr) {
      ++pos;
      continue;
    }
    size_t plain_end = pos;
    if (t->lstrip) {  // the whitespace before it goes with it
      size_t start;
      while (plain_end > plain_start &&
             IsSpace(CharBefore(text, plain_start, plain_end, &start).cp)) {
        plain_end = start;
      }
    }
    if (plain_end > plain_start) out.push_back({plain_start, plain_end - plain_start, -1});
    out.push_back({pos, t->content.size(), t->id});
    pos += t->content.size();
    if (t->rstrip) {
      while (pos < text.size()) {
        Utf8Char c = DecodeUtf8At(text, pos);
        if (!IsSpace(c.cp)) break;
        pos += c.bytes;
      }
    }
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({plain_start, text.size() - plain_start, -1});
  return out;
}

}  // namespace trainer::data
