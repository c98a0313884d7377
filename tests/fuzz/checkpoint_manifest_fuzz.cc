// Fuzzes the checkpoint readers (trainer/checkpoint/megatron_checkpoint.h): the input
// is ITER/mp_rank_00/manifest.json, then, after a line "@@STATE@@", train_state.json.
// The manifest's own entry for train_state.json rarely matches a fuzzed state, so a
// second load runs with a manifest written for it (size and xxh64 right), reaching
// the state's parser as often as the manifest's.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/megatron_checkpoint.h"

namespace {

const char kState[] =
    R"({"iteration": 10, "consumed_train_samples": 80, "consumed_valid_samples": 0,)"
    R"( "rng_step": 10, "seed": 1234, "adam_step": 10, "config_json": "{}"})";

std::string Hex64(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string manifest, state;
  coord::fuzz::SplitInput(coord::fuzz::AsString(data, size), "\n@@STATE@@\n", &manifest, &state,
                          kState);
  const std::string iter_dir = coord::fuzz::ScratchDir() + "/iter_0000010";
  coord::fuzz::WriteScratch("iter_0000010/mp_rank_00/train_state.json", state);
  coord::fuzz::WriteScratch("iter_0000010/mp_rank_00/manifest.json", manifest);
  (void)trainer::LoadCheckpointState(iter_dir, trainer::ModelShardId());

  const std::string good_manifest =
      R"({"format": "gpt-rank-checkpoint", "version": 1, "iteration": 10, "n": 0,)"
      R"( "hash": "xxh64", "files": [{"name": "model_optim_rng.bin", "size": 0,)"
      R"( "xxh64": "0"}, {"name": "train_state.json", "size": )" +
      std::to_string(state.size()) + R"(, "xxh64": ")" +
      Hex64(trainer::Xxh64(state.data(), state.size())) + "\"}]}";
  coord::fuzz::WriteScratch("iter_0000010/mp_rank_00/manifest.json", good_manifest);
  (void)trainer::LoadCheckpointState(iter_dir, trainer::ModelShardId());
  return 0;
}
