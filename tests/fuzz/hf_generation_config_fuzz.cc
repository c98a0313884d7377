// Fuzzes the reader of a Hugging Face generation_config.json
// (trainer/checkpoint/hf_generation_config.h: its eos_token_id, one id or a list), as
// `gpt-rank generate` reads it beside the tokenizer or from --generation-config.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/hf_generation_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      coord::fuzz::WriteScratch("generation_config.json", coord::fuzz::AsString(data, size));
  (void)trainer::ReadHfEosTokenIds(path);
  return 0;
}
