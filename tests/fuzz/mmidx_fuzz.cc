// Fuzzes the Megatron MMIDIDX reader (trainer/data/indexed_dataset.h): the input is
// PREFIX.idx, then, after a line "@@BIN@@", PREFIX.bin (64 zero bytes without one, so
// .bin sizes can still be matched). A dataset that opens is read back sequence by
// sequence, as the GPT dataset samples it.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/data/indexed_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string idx, bin;
  coord::fuzz::SplitInput(coord::fuzz::AsString(data, size), "\n@@BIN@@\n", &idx, &bin,
                          std::string(64, '\0'));
  coord::fuzz::WriteScratch("ds.idx", idx);
  const std::string prefix = coord::fuzz::WriteScratch("ds.bin", bin);
  auto ds = trainer::data::IndexedDataset::Open(prefix.substr(0, prefix.size() - 4));
  if (!ds.ok()) return 0;
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < std::min<int64_t>((*ds)->num_sequences(), 16); ++i) {
    tokens.clear();
    (void)(*ds)->Get(i, 0, -1, &tokens);
    (void)(*ds)->Get(i, 1, 2, &tokens);
  }
  for (int64_t d = 0; d <= std::min<int64_t>((*ds)->num_documents(), 16); ++d) {
    (void)(*ds)->doc_idx(d);
  }
  return 0;
}
