// Fuzzes the job config a checkpoint carries (trainer/checkpoint/checkpoint_model.h:
// ParseJobModelConfig on train_state.json's config_json, as generate, export-hf and the
// tensor-parallel loader read it), then, as CheckpointModelConfig does, ValidateGptConfig
// on the model it gives and the parameter count of a valid one.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/model/gpt_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto job =
      trainer::ParseJobModelConfig(coord::fuzz::AsString(data, size), "checkpoint iter_0000010");
  if (job.ok() && trainer::ValidateGptConfig(job->model).ok()) {
    (void)trainer::GptParamLayout(job->model).num_params();
  }
  return 0;
}
