// Fuzzes gpt-rank's --set KEY=VALUE overrides (trainer/train/trainer_config.h): each
// input line is one --set applied, in order, to a small job, which is then parsed as
// the trainer does.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/train/trainer_config.h"

namespace {
// configs/tiny.json's model, data and training sections.
const char kJob[] = R"({"model": {"num_layers": 4, "hidden_size": 256, "num_attention_heads": 8,
  "seq_length": 256, "max_position_embeddings": 256},
  "data": {"train_data": "brown.jsonl", "vocab_file": "encoder.json", "merge_file": "vocab.bpe",
           "split": "949,50,1"},
  "training": {"micro_batch_size": 8, "global_batch_size": 16, "train_iters": 200, "lr": 1e-3,
               "save": "runs/tiny", "save_interval": 100}})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = coord::fuzz::AsString(data, size);
  std::vector<std::string> overrides;
  size_t start = 0;
  while (start < text.size() && overrides.size() < 16) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    overrides.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  (void)gpt_rank::train::ParseTrainerConfig(kJob, "job.json", overrides, /*world_size=*/2,
                                            /*local_world_size=*/2);
  return 0;
}
