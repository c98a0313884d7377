// The model a checkpoint holds, recovered from the job config it stores
// (TrainState::config_json): the "model" section with Megatron's names, the vocabulary
// size from model.vocab_size or the tokenizer named in "data". Self-contained (no
// dependency on the trainer's full config parser) so generate / export-hf stay small.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

struct JobModelConfig {
  GptConfig model;                // vocab_size only meaningful when vocab_size_given
  bool vocab_size_given = false;  // model.vocab_size present
  std::string vocab_file;         // data.vocab_file ("" if absent)
  std::string merge_file;         // data.merge_file
  std::string tokenizer_type;     // data.tokenizer_type ("" if absent)
  std::string tokenizer_model;    // data.tokenizer_model, else data.tokenizer_file
  uint64_t seed = 1234;           // training.seed
};

// Parses the job JSON; `origin` names it in errors ("job.json", "checkpoint X").
// Missing model keys keep GptConfig's defaults (Megatron's); wrong types are errors.
coord::StatusOr<JobModelConfig> ParseJobModelConfig(const std::string& config_json,
                                                    const std::string& origin);

// The tokenizer's vocabulary size (entries in vocab.json), without loading merges.
coord::StatusOr<int> ReadVocabSize(const std::string& vocab_file);

// For generate / export-hf: the iteration `iteration` of load_dir, or the latest
// complete one when iteration < 0. InvalidArgument (a usage error) when load_dir holds
// no checkpoint at all; other errors when one exists but cannot be loaded. A
// tensor-parallel checkpoint comes back as the whole model (tp 1).
coord::StatusOr<LoadedCheckpoint> LoadCheckpointForInference(const std::string& load_dir,
                                                             int64_t iteration);

// The GptConfig of a loaded checkpoint: its job config's model section, the vocab size
// from model.vocab_size or from vocab_file (the override if non-empty, else the
// config's data.vocab_file), checked against the stored parameter count.
// *vocab_out / *merge_out (optional) receive the tokenizer paths used.
coord::StatusOr<GptConfig> CheckpointModelConfig(const LoadedCheckpoint& ckpt,
                                                 const std::string& vocab_override,
                                                 const std::string& merge_override,
                                                 std::string* vocab_out, std::string* merge_out);

}  // namespace trainer
