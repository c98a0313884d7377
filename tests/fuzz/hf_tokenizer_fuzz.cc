// Fuzzes Hugging Face's tokenizer.json reader (trainer/data/hf_tokenizer.h), loaded
// through LoadTokenizer as a job's HuggingFaceTokenizer; a tokenizer that loads
// encodes and decodes a short text with an added token in it.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trainer::data::TokenizerSpec spec;
  spec.type = "HuggingFaceTokenizer";
  spec.model = coord::fuzz::WriteScratch("tokenizer.json", coord::fuzz::AsString(data, size));
  auto tok = trainer::data::LoadTokenizer(spec);
  if (!tok.ok()) return 0;
  const std::vector<int32_t> ids = (*tok)->Encode("Hello world<|endoftext|> 123 \xc3\xa9\n");
  (void)(*tok)->Decode(ids);
  return 0;
}
