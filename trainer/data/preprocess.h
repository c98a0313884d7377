// The equivalent of Megatron's tools/preprocess_data.py --dataset-impl mmap
// --append-eod (one sequence per document, no sentence splitting): loose JSON
// in, prefix.bin / prefix.idx out, tokens as uint16 while the vocab has fewer
// than 65500 entries, else int32. Single-threaded; the output appears atomically.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {

struct PreprocessOptions {
  std::string input;          // loose JSON, one {"text": ...} per line
  std::string output_prefix;  // writes output_prefix.bin / .idx
  std::string json_key = "text";
  bool append_eod = true;       // --append-eod: end each document with <|endoftext|>
  bool skip_bad_lines = false;  // see LooseJsonOptions
};

struct PreprocessStats {
  int64_t documents = 0;        // documents written
  int64_t empty_documents = 0;  // texts with no tokens: left out, as Megatron does
  int64_t skipped_lines = 0;    // bad lines skipped (skip_bad_lines)
  int64_t tokens = 0;
  int64_t bytes_read = 0;
  DType dtype = DType::kUint16;
};

// Megatron's output name for one key: "{prefix}_{key}_document" (then .bin/.idx).
inline std::string MegatronOutputPrefix(const std::string& prefix, const std::string& key) {
  return prefix + "_" + key + "_document";
}

coord::StatusOr<PreprocessStats> PreprocessLooseJson(const PreprocessOptions& options,
                                                     Tokenizer* tokenizer);

}  // namespace trainer::data
