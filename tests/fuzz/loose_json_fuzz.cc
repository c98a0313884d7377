// Fuzzes the loose JSON reader of `gpt-rank preprocess` (trainer/data/loose_json.h):
// one JSON object per line, the "text" key read, in both modes (first bad line an
// error; bad lines skipped).
#include "tests/fuzz/fuzz_util.h"
#include "trainer/data/loose_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      coord::fuzz::WriteScratch("corpus.jsonl", coord::fuzz::AsString(data, size));
  for (bool skip : {false, true}) {
    trainer::data::LooseJsonOptions options;
    options.skip_bad_lines = skip;
    auto reader = trainer::data::LooseJsonReader::Open(path, options);
    if (!reader.ok()) continue;
    std::string text;
    for (;;) {
      auto more = (*reader)->Next(&text);
      if (!more.ok() || !*more) break;
    }
  }
  return 0;
}
