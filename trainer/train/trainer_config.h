// gpt-rank's view of the job spec: the "model", "data", "training" and "parallel"
// sections (Megatron's argument names in snake_case) plus the DeepSpeed top-level
// keys that overlap them (train_batch_size, train_micro_batch_size_per_gpu,
// gradient_accumulation_steps, gradient_clipping, fp16, zero_optimization), which
// must agree with the Megatron keys or the config is refused. Every rank parses the
// same file; `--set a.b=v` overrides are applied to the JSON before parsing.
//
// Every problem is collected and reported at once, one line each, in the style of
// common/job_spec.cc ("job.json: training.lr: expected a positive number, got "x"");
// unknown keys are errors with a did-you-mean (DeepSpeed's documented legacy
// spellings are warnings). DeepSpeed's blocks are parsed in deepspeed_config.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/tokenizer.h"
#include "trainer/model/gpt_config.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/loss_scaler.h"
#include "trainer/optim/lr_schedule.h"

namespace gpt_rank::train {

// Supervised fine-tuning (data.format "sft"); keys in the data section, ms-swift's names.
struct SftConfig {
  std::string chat_template = "auto";  // chat_template.h: auto, chatml, qwen, qwen2_5
  std::optional<std::string> default_system;  // replaces the template's ("" = none)
  int64_t max_length = 0;  // tokens per sample; 0: model.seq_length + 1 (one full row)
  std::string truncation_strategy = "delete";  // delete | left | right
  bool packing = false;         // several samples per row (rope models only)
  bool strict_samples = false;  // a bad line is fatal instead of counted and skipped
  double split_dataset_ratio = 0.01;  // held out for validation
};

struct DataConfig {
  std::string data_path;   // MMIDIDX prefix (prefix.bin / prefix.idx), or
  std::string train_data;  // loose JSON, preprocessed once into cache_dir
  // The tokenizer (trainer/data/tokenizer.h), with Megatron's names: GPT2BPETokenizer
  // reads vocab_file + merge_file, HuggingFaceTokenizer tokenizer_model (a tokenizer.json
  // or the model directory holding it); tokenizer_file is HF's name for a
  // tokenizer.json. tokenizer_type may be left out: the paths given say which.
  std::string tokenizer_type;
  std::string vocab_file;  // GPT-2 vocab.json (encoder.json)
  std::string merge_file;  // GPT-2 merges.txt (vocab.bpe)
  std::string tokenizer_model;
  std::string tokenizer_file;
  std::string cache_dir;   // where train_data is preprocessed; default below
  std::string json_key = "text";
  bool skip_bad_lines = false;   // loose JSON: skip and count bad lines, else fail
  std::string split = "969,30,1";  // Megatron's default split
  uint32_t seed = 1234;           // sample shuffling (Megatron's --seed)
  // "pretrain": train_data / data_path is a text corpus; "sft": train_data is a JSONL
  // chat dataset (trainer/data/sft_dataset.h) fine-tuned with a loss on assistant tokens.
  std::string format = "pretrain";
  SftConfig sft;  // format "sft" only
};

// The tokenizer the data section names, for trainer::data::LoadTokenizer.
inline trainer::data::TokenizerSpec TokenizerSpecOf(const DataConfig& d) {
  return {d.tokenizer_type, d.vocab_file, d.merge_file,
          d.tokenizer_model.empty() ? d.tokenizer_file : d.tokenizer_model};
}

struct TrainingConfig {
  int64_t micro_batch_size = 1;   // per rank and micro-step
  // 0: Megatron's micro_batch_size * dp (x gradient_accumulation_steps when given);
  // with pipeline parallel micro * dp * pp, the fewest micro-batches that fill the pipeline.
  int64_t global_batch_size = 0;
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
  // TensorBoard event files (Megatron's --tensorboard-dir), written by rank 0. Default
  // <save>/tensorboard; "" (given, or no save) = none.
  std::string tensorboard_dir;
  int64_t tensorboard_log_interval = 0;  // Megatron's name; 0 (not given): log_interval
  uint64_t seed = 1234;           // init and dropout (Megatron's --seed)
  int threads = 0;                // OpenMP threads; 0: OMP_NUM_THREADS or all cores
  std::string device = "cpu";     // "cpu" (the fp32 reference) or "cuda" (LOCAL_RANK's GPU)
  trainer::LossScalerConfig loss_scaler;  // fp16 only: DeepSpeed's "fp16" block
};

// DeepSpeed's zero_optimization.offload_optimizer / offload_param. "nvme" is refused
// at parse time (gpt-rank has no NVMe swapper).
struct OffloadConfig {
  std::string device = "none";  // "none" or "cpu"
  bool pin_memory = false;      // page-locked host buffers (faster PCIe copies, not swappable)
  std::string nvme_path;        // accepted for DeepSpeed configs; unused without nvme
  int64_t buffer_count = 0;     // DeepSpeed: 4 (optimizer), 5 (param); NVMe only
  int64_t buffer_size = 100000000;   // offload_param, NVMe only
  int64_t max_in_cpu = 1000000000;   // offload_param, NVMe only
  bool fast_init = false;            // offload_optimizer, NVMe only
  bool cpu() const { return device == "cpu"; }
};

// DeepSpeed's zero_optimization block, with DeepSpeed's defaults
// (deepspeed/runtime/zero/config.py, offload_config.py). Sizes are in elements.
struct ZeroConfig {
  int stage = 0;
  int64_t reduce_bucket_size = 500000000;
  int64_t allgather_bucket_size = 500000000;
  bool overlap_comm = false;  // DeepSpeed: defaults to true for stage 3 only
  bool contiguous_gradients = true;
  bool reduce_scatter = true;
  bool allgather_partitions = true;
  bool round_robin_gradients = false;
  int64_t stage3_prefetch_bucket_size = 50000000;
  int64_t stage3_max_live_parameters = 1000000000;
  int64_t stage3_max_reuse_distance = 1000000000;
  int64_t stage3_param_persistence_threshold = 100000;  // smaller tensors stay whole
  bool stage3_gather_16bit_weights_on_model_save = false;
  OffloadConfig offload_optimizer;  // fp32 master + Adam moments (+ the step) on the host
  OffloadConfig offload_param;      // stage 3 only: the 16-bit partition on the host
  ZeroConfig() {
    offload_optimizer.buffer_count = 4;
    offload_param.buffer_count = 5;
  }
};

// DeepSpeed's top-level activation_checkpointing block (deepspeed.checkpointing), and
// Megatron-DeepSpeed's --partition-activations / --checkpoint-in-cpu. It says how the
// checkpoints of model.checkpoint_activations are kept; alone it turns nothing on.
struct ActivationCheckpointingConfig {
  bool partition_activations = false;  // each TP rank keeps 1/tp of every checkpoint
  bool cpu_checkpointing = false;      // checkpoints in host memory
  bool contiguous_memory_optimization = false;
  int64_t number_checkpoints = 0;  // 0: not given (DeepSpeed's None)
  bool synchronize_checkpoint_boundary = false;
  bool profile = false;
};

// Parallel layout: Megatron's rank grid, TP innermost on consecutive ranks (a TP group
// stays inside a node when it divides the node's GPUs), then DP, then PP outermost:
// rank = pp_rank * dp * tp + dp_rank * tp + tp_rank.
struct ParallelConfig {
  int world_size = 1;  // from WORLD_SIZE (or Open MPI's / Slurm's equivalents)
  int local_rank = 0;  // from LOCAL_RANK: the GPU this rank uses with training.device "cuda"
  int local_world_size = 0;  // ranks per node (LOCAL_WORLD_SIZE); 0: unknown
  int tensor_model_parallel_size = 1;  // also Megatron's model_parallel_size
  int pipeline_model_parallel_size = 1;
  // Model chunks per pipeline stage (Megatron's interleaved schedule); 1: plain 1F1B.
  // Given directly or as parallel.num_layers_per_virtual_pipeline_stage, Megatron's
  // --num-layers-per-virtual-pipeline-stage: vpp = (num_layers / pp) / that.
  int virtual_pipeline_model_parallel_size = 1;
  int zero_stage = 0;  // = zero.stage (parallel.zero_stage or zero_optimization.stage)
  // zero.offload_optimizer.device == "cpu" / parallel.cpu_optimizer (Megatron's
  // --cpu-optimizer): the optimizer state and step on the host.
  bool cpu_optimizer = false;
  ZeroConfig zero;
  double bucket_cap_mb = 25.0;       // gradient bucket size (torch DDP's bucket_cap_mb)
  bool overlap_grad_reduce = true;   // reduce buckets during backward (Megatron's name)
  double collective_timeout_s = 300;  // every collective; a dead or stuck peer fails the rank
  double rendezvous_timeout_s = 300;  // reaching MASTER_ADDR:MASTER_PORT and all ranks joining
  std::string precision = "fp32";     // "fp32", "bf16" or "fp16" (the CPU backend computes fp32)

  // Ranks holding the same model shard: world / (tp * pp), at least 1.
  int data_parallel_size() const {
    const int mp = tensor_model_parallel_size * pipeline_model_parallel_size;
    return mp > 0 && world_size >= mp ? world_size / mp : 1;
  }
};

struct TrainerConfig {
  std::string source_path;  // the job file (for messages)
  trainer::GptConfig model;
  bool vocab_size_given = false;  // model.vocab_size set; else from the tokenizer
  DataConfig data;
  TrainingConfig training;
  ParallelConfig parallel;
  ActivationCheckpointingConfig activation_checkpointing;
  nlohmann::json job;  // the whole job JSON after --set, saved with checkpoints

  // Micro-batches each DP rank runs per iteration (the pipeline's m; gradient
  // accumulation steps without PP): global / (micro * dp), at least 1.
  int64_t num_micro_batches() const {
    const int64_t per_step = training.micro_batch_size * parallel.data_parallel_size();
    return per_step > 0 ? std::max<int64_t>(1, training.global_batch_size / per_step) : 1;
  }
};

struct TrainerConfigResult {
  TrainerConfig config;
  std::vector<std::string> warnings;  // each names the file and JSON path
};

// Applies one "a.b.c=value" override: value parsed as JSON, else taken as a string.
// Missing intermediate objects are created; a non-object on the way is an error.
coord::Status ApplyOverride(const std::string& assignment, nlohmann::json* job);

// Parses the job JSON (text) after applying `overrides` in order. `world_size` is
// WORLD_SIZE and `local_world_size` LOCAL_WORLD_SIZE, the ranks of one node (the
// caller reads the environment; 0: unknown, the TP-inside-a-node check is skipped).
// All errors in one InvalidArgument, one line each.
coord::StatusOr<TrainerConfigResult> ParseTrainerConfig(const std::string& json_text,
                                                        const std::string& path,
                                                        const std::vector<std::string>& overrides,
                                                        int world_size, int local_world_size = 0);
// Reads the file, then ParseTrainerConfig.
coord::StatusOr<TrainerConfigResult> LoadTrainerConfig(const std::string& path,
                                                       const std::vector<std::string>& overrides,
                                                       int world_size, int local_world_size = 0);

// WORLD_SIZE from the environment: 1 when unset; a non-number is an error.
coord::StatusOr<int> WorldSizeFromEnv();

// Expands ${NAME} and ${NAME:-default} (default expanded too) in a path.
std::string ExpandEnv(const std::string& text);

// Problems that stop `train` but not `plan`: FailedPrecondition naming each. Today the
// Llama/Qwen2 options on training.device "cuda" (the CUDA backend is GPT-2's); tensor,
// pipeline parallel and ZeRO pass here: the trainer refuses any combination it cannot
// run where it builds the model.
coord::Status CheckTrainable(const TrainerConfig& config);

}  // namespace gpt_rank::train
