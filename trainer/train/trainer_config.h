// gpt-rank's view of the job spec: the "model", "data", "training" and "parallel"
// sections (Megatron's argument names in snake_case) plus the DeepSpeed top-level
// keys that overlap them (train_batch_size, train_micro_batch_size_per_gpu,
// gradient_accumulation_steps, gradient_clipping, fp16, zero_optimization), which
// must agree with the Megatron keys or the config is refused. Every rank parses the
// same file; `--set a.b=v` overrides are applied to the JSON before parsing.
//
// Every problem is collected and reported at once, one line each, in the style of
// common/job_spec.cc ("job.json: training.lr: expected a positive number, got "x"");
// unknown keys are warnings with a did-you-mean.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/loss_scaler.h"
#include "trainer/optim/lr_schedule.h"

namespace gpt_rank::train {

struct DataConfig {
  std::string data_path;   // MMIDIDX prefix (prefix.bin / prefix.idx), or
  std::string train_data;  // loose JSON, preprocessed once into cache_dir
  std::string vocab_file;  // GPT-2 vocab.json (encoder.json)
  std::string merge_file;  // GPT-2 merges.txt (vocab.bpe)
  std::string cache_dir;   // where train_data is preprocessed; default below
  std::string json_key = "text";
  bool skip_bad_lines = false;   // loose JSON: skip and count bad lines, else fail
  std::string split = "969,30,1";  // Megatron's default split
  uint32_t seed = 1234;           // sample shuffling (Megatron's --seed)
};

struct TrainingConfig {
  int64_t micro_batch_size = 1;   // per rank and micro-step
  int64_t global_batch_size = 0;  // 0: micro_batch_size * world_size
  int64_t train_iters = 0;
  trainer::LrScheduleConfig lr;   // lr.train_iters / global_batch_size filled in
  trainer::AdamWConfig adam;
  double clip_grad = 1.0;         // 0: no clipping
  int64_t log_interval = 100;
  int64_t eval_interval = 1000;
  int64_t eval_iters = 100;       // 0: no evaluation
  std::string save;               // checkpoint directory ("" = no checkpoints)
  int64_t save_interval = 0;      // 0: save only at the end
  std::string load;               // resume from here ("" = fresh start)
  std::string metrics_file;       // default: <save>/metrics.jsonl ("" without save)
  uint64_t seed = 1234;           // init and dropout (Megatron's --seed)
  int threads = 0;                // OpenMP threads; 0: OMP_NUM_THREADS or all cores
  std::string device = "cpu";     // "cpu" (the fp32 reference) or "cuda" (LOCAL_RANK's GPU)
  trainer::LossScalerConfig loss_scaler;  // fp16 only: DeepSpeed's "fp16" block
};

// Parallel layout. Training runs data parallel over world_size ranks with ZeRO stage
// 0-2; tensor/pipeline parallel and stage 3 are accepted so that `gpt-rank plan` can
// size the big configs, and refused by `train`.
struct ParallelConfig {
  int world_size = 1;  // from WORLD_SIZE (or Open MPI's / Slurm's equivalents)
  int local_rank = 0;  // from LOCAL_RANK: the GPU this rank uses with training.device "cuda"
  int tensor_model_parallel_size = 1;
  int pipeline_model_parallel_size = 1;
  int zero_stage = 0;           // zero_optimization.stage
  // ZeRO offload_optimizer.device == "cpu" / parallel.cpu_optimizer. The CPU backend's
  // optimizer always runs on the CPU, so there it changes nothing.
  bool cpu_optimizer = false;
  double bucket_cap_mb = 25.0;       // gradient bucket size (torch DDP's bucket_cap_mb)
  bool overlap_grad_reduce = true;   // reduce buckets during backward (Megatron's name)
  double collective_timeout_s = 300;  // every collective; a dead or stuck peer fails the rank
  double rendezvous_timeout_s = 300;  // reaching MASTER_ADDR:MASTER_PORT and all ranks joining
  std::string precision = "fp32";     // "fp32", "bf16" or "fp16" (the CPU backend computes fp32)
};

struct TrainerConfig {
  std::string source_path;  // the job file (for messages)
  trainer::GptConfig model;
  bool vocab_size_given = false;  // model.vocab_size set; else from the tokenizer
  DataConfig data;
  TrainingConfig training;
  ParallelConfig parallel;
  nlohmann::json job;  // the whole job JSON after --set, saved with checkpoints
};

struct TrainerConfigResult {
  TrainerConfig config;
  std::vector<std::string> warnings;  // each names the file and JSON path
};

// Applies one "a.b.c=value" override: value parsed as JSON, else taken as a string.
// Missing intermediate objects are created; a non-object on the way is an error.
coord::Status ApplyOverride(const std::string& assignment, nlohmann::json* job);

// Parses the job JSON (text) after applying `overrides` in order. `world_size` is
// WORLD_SIZE (the caller reads the environment). All errors in one InvalidArgument,
// one line each.
coord::StatusOr<TrainerConfigResult> ParseTrainerConfig(const std::string& json_text,
                                                        const std::string& path,
                                                        const std::vector<std::string>& overrides,
                                                        int world_size);
// Reads the file, then ParseTrainerConfig.
coord::StatusOr<TrainerConfigResult> LoadTrainerConfig(const std::string& path,
                                                       const std::vector<std::string>& overrides,
                                                       int world_size);

// WORLD_SIZE from the environment: 1 when unset; a non-number is an error.
coord::StatusOr<int> WorldSizeFromEnv();

// Expands ${NAME} and ${NAME:-default} (default expanded too) in a path.
std::string ExpandEnv(const std::string& text);

// Problems that stop `train` but not `plan` (world size > 1, tensor/pipeline
// parallel, ZeRO): FailedPrecondition naming each.
coord::Status CheckTrainable(const TrainerConfig& config);

}  // namespace gpt_rank::train
