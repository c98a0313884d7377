// The shared JSON parser (see json_file.h). nlohmann's parser builds the value; its
// callback follows the events to bound the nesting and to find duplicate keys with their
// JSON paths, and every exception it can throw is turned into a message here.
#include "common/json_file.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <utility>

#include "common/fs.h"

namespace coord {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Syntax: duplicate keys and parse errors

// nlohmann keeps the last of two equal keys silently; like DeepSpeed, we refuse.
// Follows the parser's events to know the JSON path of each key.
class DuplicateKeyFinder {
 public:
  bool OnEvent(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        stack_.push_back(Frame{event == json::parse_event_t::object_start, {}, "", 0});
        break;
      case json::parse_event_t::key: {
        Frame& top = stack_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) duplicates_.push_back(CurrentPath());
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack_.pop_back();
        ElementDone();
        break;
      case json::parse_event_t::value:
        ElementDone();
        break;
    }
    return true;
  }
  const std::vector<std::string>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string key;  // objects: the key being parsed
    size_t index;     // arrays: the element being parsed
  };
  void ElementDone() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().index;
  }
  std::string CurrentPath() const {
    std::string path;
    for (const Frame& f : stack_)
      path = f.is_object ? JsonChildPath(path, f.key) : JsonIndexPath(path, f.index);
    return path;
  }

  std::vector<Frame> stack_;
  std::vector<std::string> duplicates_;
};

// nlohmann's "...column 5: syntax error while parsing object - unexpected string literal;
// expected '}'" becomes context "object" and reason "unexpected string literal; expected '}'".
void SplitParseMessage(const std::string& what, std::string* context, std::string* reason) {
  size_t column = what.find(", column ");
  size_t start = column == std::string::npos ? std::string::npos : what.find(": ", column);
  *reason = start == std::string::npos ? what : what.substr(start + 2);
  const std::string kPrefix = "syntax error while parsing ";
  size_t dash = reason->find(" - ");
  if (reason->compare(0, kPrefix.size(), kPrefix) == 0 && dash != std::string::npos) {
    *context = reason->substr(kPrefix.size(), dash - kPrefix.size());
    *reason = reason->substr(dash + 3);
  }
  // The position already shows where; "last read" repeats raw text, newlines included.
  size_t last = reason->find("; last read: '");
  if (last != std::string::npos) {
    size_t end = reason->find("'; ", last + 14);
    reason->erase(last, end == std::string::npos ? std::string::npos : end + 1 - last);
  }
}

// The first byte of the token whose last byte is at `end` (a string, number or literal).
size_t TokenStart(const std::string& text, size_t end) {
  if (text[end] == '"') {
    for (size_t i = end; i-- > 0;) {
      if (text[i] != '"') continue;
      size_t slashes = 0;
      while (slashes < i && text[i - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return i;  // not an escaped quote
    }
    return end;
  }
  auto in_word = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || std::strchr(".+-", ch) != nullptr;
  };
  if (!in_word(text[end])) return end;  // '{' or '['
  size_t i = end;
  while (i > 0 && in_word(text[i - 1])) --i;
  return i;
}

// The last non-whitespace byte before `pos`, or npos.
size_t PrevNonSpace(const std::string& text, size_t pos) {
  while (pos > 0) {
    --pos;
    if (!std::strchr(" \t\r\n", text[pos])) return pos;
  }
  return std::string::npos;
}

std::string LineCol(const std::string& path, const std::string& text, size_t offset) {
  int line = 0, column = 0;
  OffsetToLineColumn(text, offset, &line, &column);
  return path + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// Where and why the parser stopped, rephrased for a person, with the usual mistakes
// (comments, single quotes, a missing or trailing comma) pointed at where to edit.
std::string DescribeParseError(const std::string& text, const json::parse_error& e,
                               const std::string& path) {
  std::string context, reason;
  SplitParseMessage(e.what(), &context, &reason);
  size_t at = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
  char ch = at < text.size() ? text[at] : '\0';
  bool in_container = context == "object" || context == "array";
  bool closes = reason.rfind("unexpected '}'", 0) == 0 || reason.rfind("unexpected ']'", 0) == 0;
  bool value_starts = reason.find("literal") != std::string::npos ||
                      reason.rfind("unexpected '{'", 0) == 0 ||
                      reason.rfind("unexpected '['", 0) == 0;
  size_t prev = PrevNonSpace(text, at);
  if (ch == '/') {
    reason += R"(; JSON has no comments, put notes in a "comment" key)";
  } else if (ch == '\'') {
    reason += "; JSON strings need double quotes";
  } else if (closes && prev != std::string::npos && text[prev] == ',') {
    return LineCol(path, text, prev) + ": invalid JSON: trailing comma before '" +
           std::string(1, ch) + "'; remove it";
  } else if (in_container && value_starts && reason.rfind("unexpected ", 0) == 0) {
    // The parser finished a value and found the next one: a comma is missing after it.
    size_t value_end = PrevNonSpace(text, TokenStart(text, at));
    if (value_end != std::string::npos) {
      int line = 0, column = 0;
      OffsetToLineColumn(text, TokenStart(text, at), &line, &column);
      return LineCol(path, text, value_end + 1) + ": invalid JSON: missing ',' before the next " +
             (context == "object" ? "key" : "value") + " (line " + std::to_string(line) +
             ", column " + std::to_string(column) + "); add a comma here";
    }
  }
  return LineCol(path, text, at) + ": invalid JSON: " + reason;
}

// The byte offset at which the nesting first goes deeper than `max_depth`, skipping
// strings; npos if it never does. Only called once the parser has stopped there, so the
// text up to that point is valid JSON and this agrees with the parser.
size_t TooDeepAt(const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) return i;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return std::string::npos;
}

// Where `literal` (a number token the parser quoted) starts outside strings, or npos.
size_t FindNumberToken(const std::string& text, const std::string& literal) {
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') {
        ++i;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (text.compare(i, literal.size(), literal) == 0 &&
               (i == 0 || std::strchr(" \t\r\n,:[", text[i - 1]) != nullptr)) {
      return i;
    }
  }
  return std::string::npos;
}

// Thrown by the parser callback to stop at the first level too deep.
struct TooDeep {};

// "[json.exception.out_of_range.406] number overflow parsing '1e400'" -> the message,
// with the literal's position when it can be found.
std::string DescribeOutOfRange(const std::string& text, const json::exception& e,
                               const std::string& path) {
  const std::string what = e.what();
  const size_t q1 = what.find('\''), q2 = what.rfind('\'');
  if (e.id == 406 && q1 < q2) {
    const std::string literal = what.substr(q1 + 1, q2 - q1 - 1);
    const size_t at = FindNumberToken(text, literal);
    return (at == std::string::npos ? path : LineCol(path, text, at)) +
           ": invalid JSON: the number " + literal +
           " is out of range (a JSON number here must fit a double, at most about 1.8e308); "
           "write a smaller number, or a string if it is not meant as a number";
  }
  const size_t tag_end = what.find("] ");  // drop "[json.exception.xxx.NNN] "
  return path +
         ": invalid JSON: " + (tag_end == std::string::npos ? what : what.substr(tag_end + 2));
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

StatusOr<json> ParseJson(const std::string& text, const std::string& path,
                         std::vector<std::string>* duplicate_keys) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument(path + ": empty; expected a JSON value such as {\"key\": 1}");
  }
  DuplicateKeyFinder finder;
  json::parser_callback_t callback = [&finder, duplicate_keys](int depth, json::parse_event_t event,
                                                               json& parsed) {
    // `depth` counts the containers around this one: the top level is 0.
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw TooDeep{};
    }
    // Following keys costs a set per object: only when the caller asked (the journal's
    // replay parses millions of lines).
    return duplicate_keys == nullptr || finder.OnEvent(event, parsed);
  };
  json root;
  try {
    root = json::parse(text, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const TooDeep&) {
    const size_t at = TooDeepAt(text, kMaxJsonDepth);
    return InvalidArgument((at == std::string::npos ? path : LineCol(path, text, at)) +
                           ": invalid JSON: arrays/objects nested deeper than " +
                           std::to_string(kMaxJsonDepth) +
                           " levels; a configuration needs a few, so look for a run of "
                           "unclosed '[' or '{' here");
  } catch (const json::parse_error& e) {
    return InvalidArgument(DescribeParseError(text, e, path));
  } catch (const json::exception& e) {
    // Number overflow ("1e400") is out_of_range.406, which carries no position.
    return InvalidArgument(DescribeOutOfRange(text, e, path));
  }
  if (duplicate_keys != nullptr) {
    duplicate_keys->insert(duplicate_keys->end(), finder.duplicates().begin(),
                           finder.duplicates().end());
  }
  return root;
}

StatusOr<json> LoadJsonFile(const std::string& path, std::vector<std::string>* duplicate_keys) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseJson(*text, path, duplicate_keys);
}

void OffsetToLineColumn(const std::string& text, size_t offset, int* line, int* column) {
  offset = std::min(offset, text.size());
  int l = 1, c = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++l;
      c = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++c;  // count characters, not UTF-8 continuation bytes, as editors do
    }
  }
  if (line != nullptr) *line = l;
  if (column != nullptr) *column = c;
}

// "launch.env.NCCL_DEBUG"; keys that are not plain words are quoted: launch.env["A B"].
std::string JsonChildPath(const std::string& parent, const std::string& key) {
  bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  if (!plain) {
    return parent + "[" + json(key).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
  }
  return parent.empty() ? key : parent + "." + key;
}

std::string JsonIndexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace json_internal {

void ThrowDoesNotFit(const json& j, const char* type) {
  throw json::out_of_range::create(
      406, "the number " + j.dump() + " does not fit " + std::string(type), &j);
}

}  // namespace json_internal

}  // namespace coord
