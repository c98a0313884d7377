// What an indexed dataset holds, for `gpt-rank data-info`: dtype, counts, and the
// token ids and decoded text of chosen documents (for the moment someone doubts
// their data). Read-only; the CLI wiring and printing stay in gpt-rank.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {

struct DocumentRange {
  int64_t first = 0;  // [first, end) of document indices
  int64_t end = 0;
};
// "A:B" -> [A, B); "A" -> [A, A + 1); "" -> no documents. Both ends must be >= 0.
coord::StatusOr<DocumentRange> ParseDocumentRange(const std::string& text);

struct DocumentInfo {
  int64_t id = 0;              // document index (doc_idx entry)
  int64_t first_sequence = 0;  // its sequences [first_sequence, end_sequence)
  int64_t end_sequence = 0;
  std::vector<int32_t> tokens;  // all its tokens, sequences concatenated
  std::string text;             // decoded, invalid UTF-8 shown as U+FFFD ("" without tokenizer)
};

struct DatasetDescription {
  std::string prefix;
  DType dtype = DType::kUint16;
  int64_t sequences = 0;
  int64_t documents = 0;
  int64_t tokens = 0;
  std::vector<DocumentInfo> chosen;
};

// `tokenizer` may be null (ids only). A range past the last document is an
// OutOfRange error naming the document count.
coord::StatusOr<DatasetDescription> DescribeDataset(const std::string& prefix,
                                                    const DocumentRange& docs,
                                                    const Tokenizer* tokenizer);
// The same as JSON ("--json"), and as a few human-readable lines.
nlohmann::json DescriptionToJson(const DatasetDescription& d);
std::string DescriptionToText(const DatasetDescription& d);

}  // namespace trainer::data
