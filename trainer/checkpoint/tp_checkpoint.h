// Loading a checkpoint into any tensor-parallel layout (Megatron's mp_rank_XX shards):
// a run resumed with the tensor-parallel size it was saved with reads its own shard;
// with another size every saved shard is read, the whole tensors are put back together
// (gpt_params.h's split rules, the vocabulary padding of each size) and this rank's
// shard is cut out of them, optimizer state included. generate and export-hf use the
// same path with tp 1. Megatron needs a separate conversion tool for this.
#pragma once

#include "common/status.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// The newest loadable iteration of load_dir (LoadLatestWith) as rank tp_rank of tp for
// `model` (its vocab_size is the real vocabulary; tensor_model_parallel_size is
// ignored: tp decides the padding). optimizer selects Adam's range in this layout.
// state.tensor_model_parallel_size of the result is tp. A saved shard that is
// missing or corrupt is named; so is a model whose shapes differ from the saved one.
coord::StatusOr<LoadedCheckpoint> LoadCheckpointForLayout(const std::string& load_dir,
                                                          const GptConfig& model, int tp,
                                                          int tp_rank,
                                                          const OptimizerRange& optimizer);

// One iteration directory, as above.
coord::StatusOr<LoadedCheckpoint> LoadIterationForLayout(const std::string& iter_dir,
                                                         const GptConfig& model, int tp,
                                                         int tp_rank,
                                                         const OptimizerRange& optimizer);

}  // namespace trainer
