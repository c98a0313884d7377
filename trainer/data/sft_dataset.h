// Chat datasets for supervised fine-tuning: a JSONL file, one conversation per line,
// in any of the formats users have (each line may use its own):
//   ms-swift    {"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}
//   query       {"system"?, "query", "response", "history"?: [[query, response], ...]}
//   Alpaca      {"system"?, "instruction", "input"?, "output"}  (user: instruction, then
//               "\n" + input when there is one, as ms-swift joins them)
//   ShareGPT    {"system"?, "conversations": [{"from": "system"|"human"|"gpt", "value"}]}
// Each conversation is rendered with the chat template (chat_template.h) to ids and
// a trained mask, then held to max_length tokens by truncation_strategy (ms-swift's):
// "delete" drops a longer sample, "left" / "right" cut tokens off that side.
// A line that is not a conversation (bad JSON, an unknown role, no assistant turn, a
// sample too long under "delete", nothing trained left after truncation) is counted
// and skipped, its line and reason kept, or with `strict` the first is fatal.
// Errors and skips name file:line and the JSON path ("messages[2].role").
// Runs once per rank at set-up; the result is immutable.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {

// One line's conversation, whichever format it uses. InvalidArgument names the JSON
// path of what is wrong (a missing key, a non-string, an unknown role or "from").
coord::StatusOr<std::vector<ChatMessage>> ParseConversation(const nlohmann::json& line);

struct SftSample {
  std::vector<int32_t> ids;      // (n,) the rendered conversation
  std::vector<uint8_t> trained;  // (n,) 1 on assistant tokens
  int64_t line = 0;              // 1-based line in the file
};

enum class Truncation { kDelete, kLeft, kRight };
// "delete" | "left" | "right"; InvalidArgument otherwise.
coord::StatusOr<Truncation> ParseTruncation(const std::string& name);

struct SftLoadOptions {
  int64_t max_length = 0;  // tokens per sample; 0 = no limit
  Truncation truncation = Truncation::kDelete;
  bool strict = false;  // the first bad line is fatal instead of skipped
};

struct SftSkipped {
  int64_t line;
  std::string reason;  // "messages[1].role: unknown role \"tool\"", "no assistant turn" ...
};

struct SftData {
  std::vector<SftSample> samples;  // in file order
  std::vector<SftSkipped> skipped;
  int64_t lines = 0;      // non-blank lines read
  int64_t truncated = 0;  // samples cut by "left" / "right"
};

// Reads and renders the whole file. NotFound for a missing file; with strict, the
// first bad line as InvalidArgument "path:line: reason".
coord::StatusOr<SftData> LoadSftJsonl(const std::string& path, const ChatTemplate& chat_template,
                                      Tokenizer* tokenizer, const SftLoadOptions& options);

// A deterministic held-out split: `ratio` of the samples (at least one when ratio > 0
// and there are two or more), chosen by a shuffle keyed on seed, go to *valid; the
// rest, in file order, stay in *train.
void SplitSftSamples(std::vector<SftSample> all, double ratio, uint32_t seed,
                     std::vector<SftSample>* train, std::vector<SftSample>* valid);

}  // namespace trainer::data
