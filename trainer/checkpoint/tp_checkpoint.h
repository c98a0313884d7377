// Loading a checkpoint into any model-parallel layout (Megatron's mp_rank_XX shards, and
// mp_rank_XX_YYY with pipeline stages): a run resumed with the layout it was saved with
// reads its own shard; with another tensor-parallel size, pipeline depth or number of
// virtual chunks, the saved shards that hold this rank's tensors are read, the whole
// tensors are put back together (gpt_params.h's split rules, the vocabulary padding of
// each size; a tensor is found by its whole-model index in whichever stage held it)
// and this rank's shard is cut out of them, optimizer state included. generate and
// export-hf use the same path with the whole model. Megatron needs a separate
// conversion tool for this.
#pragma once

#include "common/status.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// A rank's place in the model-parallel grid: its tensor-parallel shard of its pipeline
// stage (all of the stage's virtual chunks).
struct ModelLayout {
  int tp = 1, tp_rank = 0;
  int pp = 1, pp_rank = 0;
  int vpp = 1;
};

// The newest loadable iteration of load_dir (LoadLatestWith) for `layout` of `model`
// (its vocab_size is the real vocabulary; tensor_model_parallel_size is ignored: tp
// decides the padding). optimizer selects Adam's range in this rank's flat layout.
// The state of the result says `layout`. A saved shard that is missing or corrupt is
// named; so is a model whose shapes differ from the saved one.
coord::StatusOr<LoadedCheckpoint> LoadCheckpointForLayout(const std::string& load_dir,
                                                          const GptConfig& model,
                                                          const ModelLayout& layout,
                                                          const OptimizerRange& optimizer);
// Tensor parallel only (no pipeline stages).
inline coord::StatusOr<LoadedCheckpoint> LoadCheckpointForLayout(
    const std::string& load_dir, const GptConfig& model, int tp, int tp_rank,
    const OptimizerRange& optimizer) {
  return LoadCheckpointForLayout(load_dir, model, ModelLayout{tp, tp_rank, 1, 0, 1}, optimizer);
}

// Writes iteration state.iteration as a tensor-parallel checkpoint of tp shards
// (mp_rank_00 .. mp_rank_<tp-1>, one data-parallel rank, zero Adam state), cut from
// whole_params, the whole model's flat buffer in GptParamLayout(model) (model's
// tensor_model_parallel_size = tp: the vocabulary padding). What a TP run saves, so
// `train` at that size loads it without re-sharding (import-hf, as Megatron's
// checkpoint converter writes a TP layout). state's tp and vocab_size are set here.
coord::Status SaveTensorParallelCheckpoint(const std::string& save_dir, TrainState state,
                                           const GptConfig& model, const float* whole_params);

// One iteration directory, as above.
coord::StatusOr<LoadedCheckpoint> LoadIterationForLayout(const std::string& iter_dir,
                                                         const GptConfig& model,
                                                         const ModelLayout& layout,
                                                         const OptimizerRange& optimizer);

}  // namespace trainer
