// Fuzzes the reader of a Hugging Face model's config.json (trainer/checkpoint/hf_llama.h:
// GPT-2, Llama and Qwen2 families), as `gpt-rank hf import` and generate read it.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/hf_llama.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      coord::fuzz::WriteScratch("hf/config.json", coord::fuzz::AsString(data, size));
  (void)trainer::ReadHfModelConfig(path.substr(0, path.rfind('/')));
  return 0;
}
