// Fuzzes the GPT-2 BPE files (trainer/data/byte_level_bpe.h, bpe_tokenizer.h): the
// input is vocab.json, then, after a line "@@MERGES@@", merges.txt. Loaded through
// LoadTokenizer as a job's GPT2BPETokenizer; a tokenizer that loads encodes and
// decodes a short text.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string vocab, merges;
  coord::fuzz::SplitInput(coord::fuzz::AsString(data, size), "\n@@MERGES@@\n", &vocab, &merges,
                          "#version: 0.2\n");
  trainer::data::TokenizerSpec spec;
  spec.type = "GPT2BPETokenizer";
  spec.vocab_file = coord::fuzz::WriteScratch("vocab.json", vocab);
  spec.merge_file = coord::fuzz::WriteScratch("merges.txt", merges);
  auto tok = trainer::data::LoadTokenizer(spec);
  if (!tok.ok()) return 0;
  const std::vector<int32_t> ids = (*tok)->Encode("Hello world, it's 2024!\n");
  (void)(*tok)->Decode(ids);
  return 0;
}
