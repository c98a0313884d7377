// The one parser for JSON a user hands us: job specs (coordctl, coordd, env-check, the
// agent's CheckNode, gpt-rank), and files the trainer reads. Whatever the text holds, the
// result is a value or an INVALID_ARGUMENT naming the file, line:column, what is wrong
// and what to do; never an exception or a crash:
//   job.json:3:9: invalid JSON: the number 1e400 is out of range (...); write a smaller number
// Thread-safe (no state).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

// Deeper nesting is refused while parsing, before it is built. A job spec nests a handful
// of levels; without a bound, 100000 '[' is a recursion in whatever walks the value later
// (printing, dump(), the checks) and a stack overflow in the process that read it.
constexpr int kMaxJsonDepth = 64;

/// Parses `text`; `path` is for messages only. With `duplicate_keys`, the JSON path of
/// every key repeated in one object is appended there (nlohmann keeps the last silently,
/// so callers that care refuse them). Errors: INVALID_ARGUMENT, one line,
/// "path:line:column: invalid JSON: <what>[; <what to do>]".
StatusOr<nlohmann::json> ParseJson(const std::string& text, const std::string& path,
                                   std::vector<std::string>* duplicate_keys = nullptr);

/// ReadFile(path) then ParseJson; a read error keeps ReadFile's code and message.
StatusOr<nlohmann::json> LoadJsonFile(const std::string& path,
                                      std::vector<std::string>* duplicate_keys = nullptr);

/// Line and column (1-based, columns in characters) of a byte offset in text.
void OffsetToLineColumn(const std::string& text, size_t offset, int* line, int* column);

/// JSON paths for messages: JsonChildPath("launch", "env") is "launch.env"; a key that is
/// not a plain word is quoted (launch.env["A B"]); JsonIndexPath("argv", 2) is "argv[2]".
std::string JsonChildPath(const std::string& parent, const std::string& key);
std::string JsonIndexPath(const std::string& parent, size_t index);

}  // namespace coord
