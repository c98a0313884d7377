// Fuzzes the trainer's job JSON parser (trainer/train/trainer_config.h), DeepSpeed's
// blocks (zero_optimization, fp16/bf16, batch sizes) included, as gpt-rank reads it
// at start on each rank and `gpt-rank plan` reads it.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/train/trainer_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = coord::fuzz::AsString(data, size);
  auto result = gpt_rank::train::ParseTrainerConfig(text, "job.json", {}, /*world_size=*/4,
                                                    /*local_world_size=*/2);
  if (result.ok()) (void)gpt_rank::train::CheckTrainable(result->config);
  return 0;
}
