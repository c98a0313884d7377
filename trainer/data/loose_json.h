// Loose JSON input: one JSON object per line with the document in a string field
// ("text" by default), the data.json of Megatron's examples and the input of
// tools/preprocess_data.py. Streams the file; one reader per thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "common/status.h"

namespace trainer::data {

struct LooseJsonOptions {
  std::string key = "text";  // Megatron's --json-keys (one key)
  // A bad line is not JSON, not an object, has no `key`, or `key` is not a string.
  // false (Megatron's behaviour, whose json.loads raises): the first bad line is an
  // error naming file:line. true: bad lines are skipped and counted.
  bool skip_bad_lines = false;
};

class LooseJsonReader {
 public:
  static coord::StatusOr<std::unique_ptr<LooseJsonReader>> Open(const std::string& path,
                                                                LooseJsonOptions options);

  // Reads the next document's text: true, or false at the end of the file.
  coord::StatusOr<bool> Next(std::string* text);

  int64_t line_number() const { return line_number_; }      // last line read (1-based)
  int64_t documents() const { return documents_; }          // texts returned so far
  int64_t skipped_lines() const { return skipped_lines_; }  // bad lines skipped so far
  int64_t bytes_read() const { return bytes_read_; }
  // "path:line: why" of the first skipped line ("" if none), for the summary log.
  const std::string& first_skipped() const { return first_skipped_; }

 private:
  LooseJsonReader(std::string path, LooseJsonOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}
  // Empty string when `line` holds a document (copied to *text), else why not.
  std::string ParseLine(const std::string& line, std::string* text) const;

  std::string path_;
  LooseJsonOptions options_;
  std::ifstream in_;
  std::string line_;
  int64_t line_number_ = 0;
  int64_t documents_ = 0;
  int64_t skipped_lines_ = 0;
  int64_t bytes_read_ = 0;
  std::string first_skipped_;
};

}  // namespace trainer::data
