// Loose JSON reader (see loose_json.h): a line is parsed with nlohmann::json, so
// strings must be valid UTF-8 and surrogate escapes paired, as Python's
// json.loads + str.encode('utf-8') in Megatron's preprocess_data.py require.
#include "trainer/data/loose_json.h"

#include <cerrno>
#include <nlohmann/json.hpp>

namespace trainer::data {

using coord::InvalidArgument;
using coord::StatusOr;

StatusOr<std::unique_ptr<LooseJsonReader>> LooseJsonReader::Open(const std::string& path,
                                                                 LooseJsonOptions options) {
  std::unique_ptr<LooseJsonReader> r(new LooseJsonReader(path, std::move(options)));
  r->in_.open(path, std::ios::binary);
  if (!r->in_.is_open()) return coord::ErrnoStatus("loose JSON input: open " + path, errno);
  return r;
}

std::string LooseJsonReader::ParseLine(const std::string& line, std::string* text) const {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return "empty line (expected JSON)";
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number beyond double range (1e400). A data line
    // is not a config: millions of them skip ParseJson's (common/json_file.h) depth and
    // duplicate-key bookkeeping; nothing here walks a value recursively.
    return std::string("not valid JSON (") + e.what() + ")";
  }
  if (!doc.is_object()) return "expected a JSON object {\"" + options_.key + "\": ...}";
  auto it = doc.find(options_.key);
  if (it == doc.end()) return "no \"" + options_.key + "\" key";
  if (!it->is_string()) return "\"" + options_.key + "\" is not a string";
  *text = it->get<std::string>();
  return "";
}

StatusOr<bool> LooseJsonReader::Next(std::string* text) {
  while (std::getline(in_, line_)) {
    ++line_number_;
    bytes_read_ += static_cast<int64_t>(line_.size()) + 1;
    std::string why = ParseLine(line_, text);
    if (why.empty()) {
      ++documents_;
      return true;
    }
    std::string where = path_ + ":" + std::to_string(line_number_) + ": " + why;
    if (!options_.skip_bad_lines) {
      return InvalidArgument(where + " (skip bad lines to continue past it)");
    }
    if (skipped_lines_++ == 0) first_skipped_ = where;
  }
  if (in_.bad()) return coord::ErrnoStatus("loose JSON input: read " + path_, errno);
  return false;
}

}  // namespace trainer::data
