// DeepSpeed's blocks of the job spec, read into TrainerConfig: the batch keys that
// overlap Megatron's (train_batch_size, train_micro_batch_size_per_gpu,
// gradient_accumulation_steps, gradient_clipping), the fp16/bf16 blocks,
// zero_optimization (ZeroConfig, with the deprecated names DeepSpeed's own examples
// still use) and activation_checkpointing. Internal to trainer_train: called by
// ParseTrainerConfig in this order, after the Megatron sections.
#pragma once

#include <nlohmann/json.hpp>

#include "trainer/train/config_parser.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {

// zero_optimization: fills c->parallel.zero, zero_stage and cpu_optimizer; a stage
// or offload that contradicts parallel.zero_stage / parallel.cpu_optimizer is an error.
void ParseZeroOptimization(const nlohmann::json& root, ConfigParser* p, TrainerConfig* c);
// activation_checkpointing (top level) merged with model.partition_activations /
// model.checkpoint_in_cpu (already in c->activation_checkpointing).
void ParseActivationCheckpointing(const nlohmann::json& root, ConfigParser* p, TrainerConfig* c);
// The batch keys: each must agree with the Megatron key it overlaps. Needs the
// parallel layout (data-parallel size) parsed first.
void ParseDeepSpeedBatch(const nlohmann::json& root, ConfigParser* p, TrainerConfig* c);
// fp16 / bf16 blocks (DeepSpeed's defaults, not Megatron's).
void ParsePrecision(const nlohmann::json& root, ConfigParser* p, TrainerConfig* c);

}  // namespace gpt_rank::train
