// Fuzzes the SFT chat dataset reader (trainer/data/sft_dataset.h: the four line formats,
// rendered by the chat template) and the chat template read from tokenizer_config.json
// (chat_template.h, "auto"): the input is chat.jsonl, then, after a line "@@CONFIG@@",
// tokenizer_config.json. Without the marker the template is "chatml". The tokenizer is
// the tests' tiny Qwen-shaped one, built once.
#include "tests/fuzz/fuzz_util.h"
#include "tests/unit/trainer_data/tiny_chat_tokenizer.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/hf_tokenizer.h"
#include "trainer/data/sft_dataset.h"

namespace {

trainer::data::HfBpeTokenizer* Tokenizer() {
  static trainer::data::HfBpeTokenizer* tok = [] {
    const std::string path = coord::fuzz::WriteScratch(
        "sft/tokenizer.json", trainer::data::testing::TinyChatTokenizerJson().dump());
    auto t = trainer::data::HfBpeTokenizer::LoadTokenizerJson(path);
    if (!t.ok()) abort();
    return t->release();
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trainer::data::HfBpeTokenizer* tok = Tokenizer();
  std::string jsonl, config;
  coord::fuzz::SplitInput(coord::fuzz::AsString(data, size), "\n@@CONFIG@@\n", &jsonl, &config, "");
  auto tmpl = trainer::data::ChatTemplate::ByName("chatml");
  if (!config.empty()) {
    coord::fuzz::WriteScratch("sft/tokenizer_config.json", config);
    auto from_config = trainer::data::ChatTemplate::Resolve(
        "auto", coord::fuzz::ScratchDir() + "/sft/tokenizer.json", std::nullopt);
    if (from_config.ok()) tmpl = std::move(from_config);
  }
  const std::string path = coord::fuzz::WriteScratch("sft/chat.jsonl", jsonl);
  // Skipping bad lines, no limit; then strict, cut to 16 tokens from the left.
  trainer::data::SftLoadOptions lenient;
  (void)trainer::data::LoadSftJsonl(path, *tmpl, tok, lenient);
  trainer::data::SftLoadOptions strict;
  strict.strict = true;
  strict.max_length = 16;
  strict.truncation = trainer::data::Truncation::kLeft;
  (void)trainer::data::LoadSftJsonl(path, *tmpl, tok, strict);
  return 0;
}
