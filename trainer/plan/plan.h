// `gpt-rank plan`'s arithmetic: per-rank memory (GPU mixed precision or the CPU
// backend's fp32 buffers) of every pipeline stage, host memory per node, a roofline time
// per iteration with the pipeline bubble, the training time for a token budget, the
// largest micro-batch that fits, DeepSpeed's own estimator figures, and what to change
// when something overflows. Pure functions of the parsed config, the cluster shape and
// a GPU table row: nothing is allocated, so it plans 100B models on a laptop.
// Formulas and sources: docs/plan.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model/gpt_config.h"
#include "trainer/plan/gpu_spec.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::plan {

struct ClusterShape {
  int nodes = 1;
  int gpus_per_node = 1;  // ranks per node
  int world_size() const { return nodes * gpus_per_node; }
};

// Stated assumptions, printed with every plan.
// The CPU backend's resident memory before the model: code and libraries, OpenMP and
// gloo threads, the tokenizer and the dataset index (measured: 190-230 MiB RSS on
// Debian 12 for gpt-rank on the demo data, at 1 and 2 ranks).
inline constexpr double kCpuRuntimeReserveBytes = 200.0 * 1024 * 1024;
inline constexpr double kAchievableFlopsFraction = 0.40;  // of the dense peak, for the GEMMs
inline constexpr double kLinkEfficiency = 0.80;           // NCCL bus bandwidth / link peak
inline constexpr double kHostMemoryEfficiency = 0.60;     // CPU Adam's share of the peak
inline constexpr double kCudaRuntimeReserveBytes = 1.5 * 1024 * 1024 * 1024;  // context, NCCL, cuBLAS
inline constexpr double kCpuAdamBytesPerParam = 28;  // read p,g,m,v; write p,m,v (fp32)

// Parameter counts of one model shard: one TP rank of pipeline stage `pipeline_rank`.
// Megatron's split: QKV and fc column-parallel (output dim / tp, their biases too), attn
// proj and fc proj row-parallel (input dim / tp, biases replicated), word embedding
// vocab-parallel (Vp / tp); position embedding and LayerNorms replicated. Each stage
// holds L/pp layers; the first also the embeddings (wte, wpe), the last the final
// LayerNorm and, with pp > 1, its own copy of the tied wte for the output layer (Megatron
// keeps the two in sync by an all-reduce of their gradients over the embedding group).
struct ShardParams {
  int64_t model = 0;       // N: the whole model, unsharded
  int64_t shard = 0;       // parameters one rank's model shard holds
  int64_t layer = 0;       // one transformer layer of the shard
  int64_t layers = 0;      // transformer layers of this stage
  int64_t largest_module = 0;  // the module with the most own parameters (DeepSpeed's "largest layer")
  int64_t persistent = 0;  // ZeRO-3: tensors below stage3_param_persistence_threshold, kept whole
};
ShardParams CountShardParams(const trainer::GptConfig& model, int tp, int pp,
                             int64_t persistence_threshold, int pipeline_rank = 0);

// Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
// Models", eq. 2 with tensor parallel t: bytes of one layer's stored activations in
// 16-bit, s*b*h*(10 + 24/t + 5*a*s/(h*t)).
double LayerActivationBytes(const trainer::GptConfig& model, int micro_batch, int tp);

// The CPU backend's activation and backward buffers of one TP rank, in floats: the
// layout of gpt_params.h's ActivationFloats / GradActivationFloats with the
// TP-sharded tensors divided (qkv, att, atty, fch, fch_gelu, logits; dqkv, dfch,
// dfch_gelu). Equal to them at tp = 1.
size_t CpuActivationFloats(const trainer::GptConfig& model, int B, int T, int tp, bool checkpoint);
size_t CpuBackwardFloats(const trainer::GptConfig& model, int B, int T, int tp);

// Bytes of one rank (one GPU, or one CPU process) of one pipeline stage. Device figures
// are what the rank allocates on its GPU (on its heap for the CPU backend); host figures
// what it keeps in host memory for offload and CPU checkpointing.
struct RankMemory {
  bool cpu_backend = false;
  int64_t micro_batch = 0;
  int pipeline_rank = 0;
  int64_t layers = 0;      // transformer layers of this stage
  int64_t in_flight = 1;   // (chunk) micro-batches whose activations it holds at the peak
  double layers_held = 0;  // layer activations held at the peak: in_flight x L/(pp vpp)
  double params = 0;      // 16-bit working copy (fp32 on the CPU backend); ZeRO-3: the partition
  double grads = 0;       // gradients on the device (0 with an offloaded optimizer at stage >= 1)
  double optimizer = 0;   // fp32 master + Adam m, v (m, v only at fp32) on the device
  double zero3_window = 0;     // ZeRO-3 gathered params (+ their grads on the CPU backend) + persistent
  double activations = 0;      // as configured (checkpointing, partitioning, CPU checkpoints)
  double activations_no_ckpt = 0;  // without checkpointing, for comparison
  double activations_ckpt = 0;     // with checkpointing, checkpoints kept on this device
  double checkpoints = 0;          // the layer-input checkpoints alone (0 without checkpointing)
  double backward = 0;         // CPU backend: backward-only buffers
  double buckets = 0;          // gradient reduce / all-gather buckets
  double logits = 0;           // s*b*Vp/tp fp32 for the loss (the last stage)
  double runtime_reserve = 0;  // CUDA context, NCCL and cuBLAS workspaces
  double device_total = 0;
  double host_optimizer = 0;   // offloaded master + m + v + fp32 grads
  double host_params = 0;      // offload_param: the 16-bit partition
  double host_checkpoints = 0; // cpu_checkpointing
  double host_total = 0;
  bool host_pinned = false;    // offload with pin_memory
};
// The memory of a rank of stage `pipeline_rank` at the config's micro-batch
// (training.micro_batch_size), or at `micro_batch` when > 0. Training.device "cpu"
// plans the CPU backend (fp32 buffers, what the process's RSS holds beyond its code and
// data pages); "cuda" the GPU.
RankMemory PlanRankMemory(const train::TrainerConfig& config, const ClusterShape& cluster,
                          const GpuSpec& gpu, int64_t micro_batch = 0, int pipeline_rank = 0);
// The stage that needs the most device memory (the first under 1F1B, unless the last
// stage's logits outweigh its extra in-flight activations).
RankMemory PlanWorstStageMemory(const train::TrainerConfig& config, const ClusterShape& cluster,
                                const GpuSpec& gpu, int64_t micro_batch = 0);

// DeepSpeed's estimators, the arithmetic of estimate_zero3_model_states_mem_needs
// (runtime/zero/stage3.py) and estimate_zero2_model_states_mem_needs
// (runtime/zero/stage_1_and_2.py): per-node CPU and per-GPU bytes of model states.
struct DeepSpeedEstimate {
  double cpu_bytes_per_node = 0;
  double gpu_bytes = 0;
  double largest_layer_bytes = 0;  // zero3: 4 * largest_layer_params
};
DeepSpeedEstimate EstimateZero3(double total_params, double largest_layer_params,
                                int gpus_per_node, int nodes, bool cpu_offload,
                                bool cpu_offload_params, bool zero_init,
                                double additional_buffer_factor = 1.5);
DeepSpeedEstimate EstimateZero2(double total_params, int gpus_per_node, int nodes,
                                bool cpu_offload, double additional_buffer_factor = 1.5);

// Model FLOPs of one token, forward and backward, no recomputation: 6 per parameter
// plus the attention score and context matmuls, 12 L s h (Narayanan et al. 2021, eq. 3).
double ModelFlopsPerToken(const trainer::GptConfig& model);

// Seconds of one iteration (global batch) by component, from the roofline, for the
// slowest pipeline stage (the last: its layers plus the output layer and the loss).
struct IterationTime {
  double flops_per_gpu = 0;  // the slowest stage's FLOPs per GPU (recomputation included)
  double matmul = 0;         // flops_per_gpu at kAchievableFlopsFraction of the dense peak
  double memory_bound = 0;   // elementwise ops (LayerNorm, GELU, dropout, softmax) at HBM speed
  double compute = 0;        // matmul + memory_bound
  double tp_comm = 0;        // Megatron's all-reduces over NVLink (the network across nodes)
  double pp_p2p = 0;         // activations and their gradients to the neighbouring stages
  int64_t micro_batches = 1;   // m: per DP rank and iteration
  double bubble_fraction = 0;  // (pp-1)/(m vpp): pipeline fill and drain over ideal time
  double bubble = 0;           // seconds: (compute + tp + p2p) x bubble_fraction
  double embedding_sync = 0;  // pp > 1: all-reduce of the tied wte's gradient, first <-> last stage
  double dp_comm = 0;        // gradient reduce-scatter / all-reduce, parameter all-gathers
  double offload_pcie = 0;   // gradients down, parameters up (and offload_param gathers)
  double cpu_adam = 0;       // the optimizer step on the host at memory bandwidth
  // (compute + tp + p2p) x (1 + bubble) + embedding sync + CPU Adam + DP/PCIe not hidden
  double total = 0;
  double tokens_per_s = 0;  // of the whole job
  double mfu = 0;           // ModelFlopsPerToken x tokens/s / (GPUs x dense peak)
  int slowest_stage = 0;
  bool tp_across_nodes = false;
  bool pp_across_nodes = false;
};
IterationTime PlanIterationTime(const train::TrainerConfig& config, const ClusterShape& cluster,
                                const GpuSpec& gpu);

// Everything `gpt-rank plan` prints.
struct Plan {
  ClusterShape cluster;
  GpuSpec gpu{};
  double host_memory_bytes = 0;  // per node (the table's, or --host-memory-gb)
  ShardParams params;            // of the stage that needs the most memory
  int tp = 1, pp = 1, dp = 1, vpp = 1;
  RankMemory rank;                 // the stage that needs the most memory (worst_stage)
  std::vector<RankMemory> stages;  // every pipeline stage, first to last
  int worst_stage = 0;
  double usable_device_bytes = 0;
  double host_per_node = 0;      // gpus_per_node * rank.host_total
  bool fits_device = false, fits_host = false;
  int64_t largest_micro_batch = 0;  // that fits both (0: not even 1)
  IterationTime time;
  double train_tokens = 0;  // --train-tokens, else train_iters x global batch x seq
  bool train_tokens_given = false;
  double train_time_s = 0;  // train_tokens / time.tokens_per_s
  bool has_deepspeed_estimate = false;
  int deepspeed_stage = 0;
  DeepSpeedEstimate deepspeed;
  std::string deepspeed_note;           // how its figures differ from ours, and why
  std::vector<std::string> advice;      // what to change when something overflows
  bool fits() const { return fits_device && fits_host; }
};
// host_memory_bytes <= 0: the GPU table's node figure; train_tokens <= 0: the config's
// train_iters x global_batch_size x seq_length.
Plan MakePlan(const train::TrainerConfig& config, const ClusterShape& cluster, const GpuSpec& gpu,
              double host_memory_bytes = 0, double train_tokens = 0);

}  // namespace gpt_rank::plan
