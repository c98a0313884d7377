// Loose JSON -> Megatron indexed dataset (see preprocess.h): Encoder.encode and
// main() of tools/preprocess_data.py, with the IdentitySplitter (no --split-sentences).
#include "trainer/data/preprocess.h"

#include "common/logging.h"
#include "trainer/data/loose_json.h"

namespace trainer::data {

coord::StatusOr<PreprocessStats> PreprocessLooseJson(const PreprocessOptions& options,
                                                     Tokenizer* tokenizer) {
  if (options.append_eod && tokenizer->eod_id() < 0) {
    return coord::InvalidArgument(
        "preprocess: --append-eod needs an end-of-document token (<|endoftext|>) in the tokenizer");
  }
  LooseJsonOptions json_options;
  json_options.key = options.json_key;
  json_options.skip_bad_lines = options.skip_bad_lines;
  ASSIGN_OR_RETURN(auto reader, LooseJsonReader::Open(options.input, json_options));
  PreprocessStats stats;
  stats.dtype = BestFittingDType(tokenizer->vocab_size());
  ASSIGN_OR_RETURN(auto builder, IndexedDatasetBuilder::Create(options.output_prefix, stats.dtype));
  std::string text;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&text));
    if (!more) break;
    std::vector<int32_t> ids = tokenizer->Encode(text);
    // Encoder.encode keeps a sentence only if it has tokens, and appends EOD
    // only to a document that has one; main() writes no empty document.
    if (ids.empty()) {
      ++stats.empty_documents;
      continue;
    }
    if (options.append_eod) ids.push_back(tokenizer->eod_id());
    RETURN_IF_ERROR(builder->AddItem(ids).WithContext(options.input + ":" +
                                                      std::to_string(reader->line_number())));
    builder->EndDocument();
    ++stats.documents;
    stats.tokens += static_cast<int64_t>(ids.size());
  }
  RETURN_IF_ERROR(builder->Finalize());
  stats.skipped_lines = reader->skipped_lines();
  stats.bytes_read = reader->bytes_read();
  if (stats.skipped_lines > 0) {
    LOG_WARN << "preprocess: skipped " << stats.skipped_lines << " bad lines of " << options.input
             << "; first: " << reader->first_skipped();
  }
  return stats;
}

}  // namespace trainer::data
