// `gpt-rank plan`'s arithmetic (see plan.h; formulas and sources in docs/plan.md).
// Every figure is a double of bytes or seconds: a 100B model's byte counts exceed
// 2^32 but stay far below 2^53, where doubles are exact for these integers.
#include "trainer/plan/plan.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "trainer/model/gpt_params.h"
#include "trainer/plan/pipeline_schedule.h"

namespace gpt_rank::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double CeilDiv(double a, double b) { return std::ceil(a / b); }

int DataParallel(const train::TrainerConfig& c, const ClusterShape& cluster) {
  const int mp = c.parallel.tensor_model_parallel_size * c.parallel.pipeline_model_parallel_size;
  return std::max(1, cluster.world_size() / std::max(1, mp));
}

bool Mixed(const train::TrainerConfig& c) { return c.parallel.precision != "fp32"; }

std::string GiBText(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", bytes / kGiB);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------
// Parameters

namespace {

// One layer's tensors, split for tensor parallel t (the order of gpt_params.h's table):
// norm 1 (w, b), qkv (w, b), attn proj (w, b), norm 2 (w, b), fc (w, b), fc proj (w, b);
// 0 where the architecture has none (RMSNorm's bias, --disable-bias-linear). QKV rows
// are (NH + 2 KV) HS (GQA), fc's F or 2F (SwiGLU's gate and up).
std::array<int64_t, 12> LayerTensors(const trainer::GptConfig& m, int64_t t) {
  const int64_t h = m.hidden_size, qkv = m.qkv_rows(), fc = m.fc_rows(), F = m.ffn_size();
  const int64_t attn = static_cast<int64_t>(m.num_attention_heads) * m.head_size();
  const int64_t norm_bias = m.rms_norm() ? 0 : h, bias = m.add_bias_linear ? 1 : 0;
  return {h,         norm_bias, qkv * h / t,  m.qkv_bias() ? qkv / t : 0, attn * h / t, bias * h,
          h,         norm_bias, fc * h / t,   bias * fc / t,              F * h / t,    bias * h};
}

}  // namespace

ShardParams CountShardParams(const trainer::GptConfig& model, int tp, int pp,
                             int64_t persistence_threshold, int pipeline_rank) {
  trainer::GptConfig m = model;
  m.tensor_model_parallel_size = tp;  // Megatron pads the vocab to a multiple of div * tp
  const int64_t h = m.hidden_size, Vp = m.padded_vocab_size();
  const int64_t wpe = m.rope() ? 0 : static_cast<int64_t>(m.max_position_embeddings) * h;
  const int64_t lnf = m.rms_norm() ? h : 2 * h;
  const int64_t L = m.num_layers, t = std::max(1, tp);
  pp = std::max(1, pp);
  const bool first = pipeline_rank <= 0, last = pipeline_rank >= pp - 1;
  ShardParams s;
  int64_t full_layer = 0;
  for (int64_t n : LayerTensors(m, 1)) full_layer += n;
  s.model = Vp * h + wpe + L * full_layer + lnf + (m.tied_output() ? 0 : Vp * h);
  // One layer of the shard: column-parallel output dims and row-parallel input dims / tp.
  const std::array<int64_t, 12> layer_tensors = LayerTensors(m, t);
  s.layers = (L + pp - 1) / pp;  // the config check makes pp divide L
  for (int64_t n : layer_tensors) {
    if (n == 0) continue;  // a tensor the architecture does not have
    s.layer += n;
    if (n < persistence_threshold) s.persistent += s.layers * n;
  }
  s.shard = s.layers * s.layer;
  auto add = [&](int64_t n) {
    s.shard += n;
    if (n < persistence_threshold) s.persistent += n;
  };
  if (first) {  // wte (vocab-parallel), wpe (learned positions)
    add(Vp * h / t);
    if (wpe > 0) add(wpe);
  }
  if (last) {  // final norm (w, b); the untied output layer, or with pp > 1 the last
               // stage's copy of the tied wte
    add(h);
    if (!m.rms_norm()) add(h);
    if (!m.tied_output() || !first) add(Vp * h / t);
  }
  // DeepSpeed's "largest layer": the module with the most parameters of its own (the
  // linear layers with their biases).
  const auto& lt = layer_tensors;
  s.largest_module = std::max({lt[8] + lt[9], lt[10] + lt[11], lt[2] + lt[3], lt[4] + lt[5]});
  if (first) s.largest_module = std::max({s.largest_module, Vp * h / t, wpe});
  if (last) s.largest_module = std::max(s.largest_module, Vp * h / t);
  return s;
}

// ---------------------------------------------------------------------------
// Activations

double LayerActivationBytes(const trainer::GptConfig& m, int micro_batch, int tp) {
  const double s = m.seq_length, b = micro_batch, h = m.hidden_size, a = m.num_attention_heads;
  const double t = std::max(1, tp);
  // The tensor-parallel part, 24 for GPT-2: Q and K for the scores 4 (K is KV/NH of Q
  // with GQA), V 2, the projection's input 2, the fc output (the activation's input) 2
  // FC/h = 8, the activation's output 2 F/h = 8. SwiGLU's fc output is [gate | up].
  const double kv = static_cast<double>(m.kv_heads()) / m.num_attention_heads;
  const double split = 2.0 * (1.0 + kv) + 2.0 * kv + 2.0 + 2.0 * m.fc_rows() / h +
                       2.0 * m.ffn_size() / h;
  return s * b * h * (10.0 + split / t + 5.0 * a * s / (h * t));
}

size_t CpuActivationFloats(const trainer::GptConfig& model, int B, int T, int tp, bool checkpoint) {
  trainer::GptConfig m = model;
  m.tensor_model_parallel_size = tp;
  const size_t BT = static_cast<size_t>(B) * T, C = m.hidden_size, L = m.num_layers;
  const size_t NH = m.num_attention_heads, Vp = m.padded_vocab_size(), t = std::max(1, tp);
  const size_t BTC = BT * C, QKV = m.qkv_rows(), FC = m.fc_rows(), F = m.ffn_size();
  // ln1, ln1 mean/rstd, qkv, att, atty, residual2, ln2, ln2 mean/rstd, fch, fch_gelu
  const size_t layer = BTC + 2 * BT + BT * (QKV / t) + BT * (NH / t) * T + BTC / t + BTC + BTC +
                       2 * BT + BT * (FC / t) + BT * (F / t);
  const size_t residual = (L + 1) * BTC;
  // scratch, lnf, lnf mean/rstd, logits (vocab-parallel), losses
  const size_t top = BTC + BTC + 2 * BT + BT * (Vp / t) + BT;
  return residual + (checkpoint ? 1 : L) * layer + top;
}

size_t CpuBackwardFloats(const trainer::GptConfig& m, int B, int T, int tp) {
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * m.hidden_size, t = std::max(1, tp);
  // dresidual, dbtc, dbtc2; dqkv, dfch, dfch_gelu
  return 3 * BTC + BT * (m.qkv_rows() / t) + BT * (m.fc_rows() / t) + BT * (m.ffn_size() / t);
}

// ---------------------------------------------------------------------------
// Memory of one rank

namespace {

// ZeRO-3's gathered window: what is fetched ahead (prefetch bucket) plus what stays
// gathered (max_live_parameters, at least one whole module), never more than the
// partitioned parameters themselves.
double Zero3LiveParams(const train::ZeroConfig& z, const ShardParams& sp) {
  const double gatherable = static_cast<double>(sp.shard - sp.persistent);
  const double live = std::max<double>(static_cast<double>(sp.largest_module),
                                       static_cast<double>(z.stage3_max_live_parameters)) +
                      static_cast<double>(z.stage3_prefetch_bucket_size);
  return std::min(gatherable, live);
}

// One pipeline stage's share of the model and of the schedule: its parameters, and the
// layer activations it holds at once (all L layers of one micro-batch without PP).
struct Stage {
  ShardParams sp;
  bool last = true;
  int64_t in_flight = 1;
  double layers_held = 0;
};

Stage StageOf(const train::TrainerConfig& c, int tp, int dp, int64_t b, int pipeline_rank) {
  const train::ParallelConfig& pc = c.parallel;
  const int pp = std::max(1, pc.pipeline_model_parallel_size);
  const int vpp = std::max(1, pc.virtual_pipeline_model_parallel_size);
  Stage st;
  st.sp =
      CountShardParams(c.model, tp, pp, pc.zero.stage3_param_persistence_threshold, pipeline_rank);
  st.last = pipeline_rank >= pp - 1;
  const int64_t m =
      std::max<int64_t>(1, c.training.global_batch_size / std::max<int64_t>(1, b * dp));
  st.in_flight = pp > 1 ? InFlightMicroBatches(pp, vpp, m, pipeline_rank) : 1;
  const double per_chunk = static_cast<double>(st.sp.layers) / (pp > 1 ? vpp : 1);
  st.layers_held = static_cast<double>(st.in_flight) * per_chunk;
  return st;
}

void PlanCpuRank(const train::TrainerConfig& c, int tp, int dp, int64_t b, const Stage& st,
                 RankMemory* r) {
  const trainer::GptConfig& m = c.model;
  const train::ZeroConfig& z = c.parallel.zero;
  const int stage = c.parallel.zero_stage;
  const ShardParams& sp = st.sp;
  const double f = sizeof(float), P = static_cast<double>(sp.shard);
  if (stage == 3) {
    // trainer/train/zero3.h: the partition (an even range of the whole shard, as ZeRO
    // 1/2 split the optimizer) of params and reduced grads; the persistent replica;
    // gathered modules (at most max_live_parameters of them, at least the one in use)
    // plus the gradients of the module in backward; with overlap_comm (dp > 1) also
    // those of the previous module, whose reduce-scatter is in flight: at most the
    // largest module plus a layer (head + layer L-1, layer + layer, embedding + layer
    // 0). Prefetch adds nothing: it gathers only within max_live_parameters.
    trainer::GptConfig mt = m;
    mt.tensor_model_parallel_size = tp;
    const double h = m.hidden_size, wte = static_cast<double>(mt.padded_vocab_size()) * h / tp;
    const double wpe = m.rope() ? 0.0 : static_cast<double>(m.max_position_embeddings) * h;
    const double lnf = m.rms_norm() ? h : 2 * h;  // the head: final norm + wte or output layer
    const double module = std::max({wte + wpe, wte + lnf, static_cast<double>(sp.layer)});
    const double live = std::max(module, static_cast<double>(z.stage3_max_live_parameters));
    r->params = f * CeilDiv(P, dp);
    r->grads = f * CeilDiv(P, dp);
    // The head and the embedding each gather the tied wte into their own buffer, so a
    // window that keeps both holds it twice: at most the shard plus one more wte (an
    // untied output layer is counted in the shard already; the bound stays an upper one).
    r->zero3_window =
        f * static_cast<double>(sp.persistent) + f * std::min(P + wte, live) + f * module +
        (z.overlap_comm && dp > 1 ? f * static_cast<double>(sp.layer) : 0.0);
    // The gloo ring's receive scratch: one rank's block of the largest bucket it
    // reduce-scatters, kept by the communicator.
    r->buckets = f * CeilDiv(std::min(module, static_cast<double>(z.reduce_bucket_size)), dp);
  } else {
    // The full gradient buffer stays as backward's workspace; stage 2 adds the shard's
    // running sum between micro-batches.
    r->params = f * P;
    r->grads = f * P + (stage == 2 && dp > 1 ? f * CeilDiv(P, dp) : 0.0);
  }
  r->optimizer = 2 * f * (stage >= 1 ? CeilDiv(P, dp) : P);  // Adam m, v (params are the master)
  const int T = m.seq_length, B = static_cast<int>(b);
  // A stage's buffers as the model's with its held layers; the output layer's (final
  // LayerNorm, logits, losses) only on the last stage.
  trainer::GptConfig held = m;
  held.num_layers = static_cast<int>(std::ceil(st.layers_held));
  trainer::GptConfig mt = m;
  mt.tensor_model_parallel_size = tp;
  const double BT = static_cast<double>(b) * T;
  const double head =
      st.last ? 0.0 : BT * m.hidden_size + 2 * BT + BT * (mt.padded_vocab_size() / tp) + BT;
  r->activations_no_ckpt =
      f * (static_cast<double>(CpuActivationFloats(held, B, T, tp, false)) - head);
  r->activations_ckpt = f * (static_cast<double>(CpuActivationFloats(held, B, T, tp, true)) - head);
  r->checkpoints = m.checkpoint_activations
                       ? f * static_cast<double>(held.num_layers + 1) * b * T * m.hidden_size
                       : 0.0;
  r->activations = m.checkpoint_activations ? r->activations_ckpt : r->activations_no_ckpt;
  r->backward = f * static_cast<double>(CpuBackwardFloats(m, B, T, tp));
  r->runtime_reserve = kCpuRuntimeReserveBytes;
  r->device_total = r->params + r->grads + r->optimizer + r->zero3_window + r->activations +
                    r->backward + r->buckets + r->runtime_reserve;
}

void PlanGpuRank(const train::TrainerConfig& c, int tp, int dp, int64_t b, const Stage& st,
                 RankMemory* r) {
  const trainer::GptConfig& m = c.model;
  const train::ParallelConfig& pc = c.parallel;
  const train::ZeroConfig& z = pc.zero;
  const train::ActivationCheckpointingConfig& ac = c.activation_checkpointing;
  const int stage = pc.zero_stage;
  const ShardParams& sp = st.sp;
  const double p = Mixed(c) ? 2.0 : 4.0, P = static_cast<double>(sp.shard);
  const double gatherable = static_cast<double>(sp.shard - sp.persistent);
  const double part = stage >= 1 ? CeilDiv(P, dp) : P;  // this rank's optimizer partition
  const bool off_opt = pc.cpu_optimizer, off_par = stage == 3 && z.offload_param.cpu();
  // Model states: 16-bit params and grads, fp32 master + m + v (12 B) in mixed
  // precision; fp32 params and grads with m + v (8 B) in fp32. 16 B/param either way.
  if (stage == 3) {
    r->params = off_par ? 0.0 : p * CeilDiv(gatherable, dp);
    r->zero3_window = p * (static_cast<double>(sp.persistent) + Zero3LiveParams(z, sp));
  } else {
    r->params = p * P;
  }
  // With the optimizer offloaded (stage >= 1) reduced gradients stream to the host;
  // only the buckets stay on the device (DeepSpeed's ZeRO-Offload).
  r->grads = off_opt && stage >= 1 ? 0.0 : (stage >= 2 ? p * CeilDiv(P, dp) : p * P);
  r->optimizer = off_opt ? 0.0 : (Mixed(c) ? 12.0 : 8.0) * part;
  r->host_optimizer = off_opt ? 16.0 * part : 0.0;  // fp32 master, m, v, grads
  r->host_params = off_par ? p * CeilDiv(gatherable, dp) : 0.0;
  r->host_pinned = (off_opt && z.offload_optimizer.pin_memory) ||
                   (off_par && z.offload_param.pin_memory);

  // Activations in the compute precision (Korthikanti's figures are for 16-bit), of
  // every layer and micro-batch the schedule keeps in flight on this stage.
  const double scale = p / 2.0, layers = st.layers_held;
  const double one_layer = scale * LayerActivationBytes(m, static_cast<int>(b), tp);
  const double inputs = layers * 2.0 * m.seq_length * b * m.hidden_size * scale;
  const double ckpts = inputs / (ac.partition_activations ? tp : 1);
  r->activations_no_ckpt = layers * one_layer;
  r->activations_ckpt = ckpts + one_layer;  // checkpoints + one layer recomputed
  if (m.checkpoint_activations) {
    r->checkpoints = ckpts;
    r->host_checkpoints = ac.cpu_checkpointing ? ckpts : 0.0;
    r->activations = (ac.cpu_checkpointing ? 0.0 : ckpts) + one_layer;
  } else {
    r->activations = r->activations_no_ckpt;
  }
  trainer::GptConfig mt = m;
  mt.tensor_model_parallel_size = tp;
  r->logits = st.last ? 4.0 * m.seq_length * b * mt.padded_vocab_size() / tp : 0.0;
  // Buckets in the gradient precision, each at most the shard; overlap_comm double-buffers.
  const double reduce = std::min(P, static_cast<double>(z.reduce_bucket_size)) * p *
                        (z.overlap_comm ? 2 : 1);
  const double gather = std::min(P, static_cast<double>(z.allgather_bucket_size)) * p;
  r->buckets = stage == 3 ? reduce : stage >= 1 ? reduce + gather : 0.0;  // stage 0: views of grads
  r->runtime_reserve = kCudaRuntimeReserveBytes;
  r->device_total = r->params + r->grads + r->optimizer + r->zero3_window + r->activations +
                    r->logits + r->buckets + r->runtime_reserve;
  r->host_total = r->host_optimizer + r->host_params + r->host_checkpoints;
}

}  // namespace

RankMemory PlanRankMemory(const train::TrainerConfig& c, const ClusterShape& cluster,
                          const GpuSpec& /*gpu*/, int64_t micro_batch, int pipeline_rank) {
  RankMemory r;
  r.micro_batch = micro_batch > 0 ? micro_batch : c.training.micro_batch_size;
  r.cpu_backend = c.training.device == "cpu";
  r.pipeline_rank = pipeline_rank;
  const int tp = std::max(1, c.parallel.tensor_model_parallel_size);
  const int dp = DataParallel(c, cluster);
  const Stage st = StageOf(c, tp, dp, r.micro_batch, pipeline_rank);
  r.layers = st.sp.layers;
  r.in_flight = st.in_flight;
  r.layers_held = st.layers_held;
  if (r.cpu_backend) {
    PlanCpuRank(c, tp, dp, r.micro_batch, st, &r);
  } else {
    PlanGpuRank(c, tp, dp, r.micro_batch, st, &r);
  }
  return r;
}

RankMemory PlanWorstStageMemory(const train::TrainerConfig& c, const ClusterShape& cluster,
                                const GpuSpec& gpu, int64_t micro_batch) {
  RankMemory worst;
  for (int s = 0; s < std::max(1, c.parallel.pipeline_model_parallel_size); ++s) {
    RankMemory r = PlanRankMemory(c, cluster, gpu, micro_batch, s);
    if (s == 0 || r.device_total + r.host_total > worst.device_total + worst.host_total) worst = r;
  }
  return worst;
}

// ---------------------------------------------------------------------------
// DeepSpeed's estimators (the arithmetic only; see plan.h)

DeepSpeedEstimate EstimateZero3(double total_params, double largest_layer_params,
                                int gpus_per_node, int nodes, bool cpu_offload,
                                bool cpu_offload_params, bool zero_init,
                                double additional_buffer_factor) {
  const double total_gpus = static_cast<double>(nodes) * gpus_per_node;
  const double gpus_factor = 1.0 / nodes;
  DeepSpeedEstimate e;
  e.largest_layer_bytes = 4.0 * largest_layer_params;
  const double gpn4 = 4.0 * gpus_per_node;
  if (cpu_offload && cpu_offload_params) {
    e.gpu_bytes = e.largest_layer_bytes;
    e.cpu_bytes_per_node = total_params * (zero_init ? 18 * gpus_factor
                                                     : std::max(gpn4, 18 * gpus_factor)) *
                           additional_buffer_factor;
  } else if (cpu_offload) {
    e.gpu_bytes = e.largest_layer_bytes + std::floor(2 * total_params / total_gpus);
    e.cpu_bytes_per_node = total_params * (zero_init ? 16 * gpus_factor
                                                     : std::max(gpn4, 16 * gpus_factor)) *
                           additional_buffer_factor;
  } else {
    e.gpu_bytes = e.largest_layer_bytes + std::floor(18 * total_params / total_gpus);
    e.cpu_bytes_per_node = (zero_init ? largest_layer_params : total_params) * gpn4 *
                           additional_buffer_factor;
  }
  e.gpu_bytes = std::floor(e.gpu_bytes);
  e.cpu_bytes_per_node = std::floor(e.cpu_bytes_per_node);
  return e;
}

DeepSpeedEstimate EstimateZero2(double total_params, int gpus_per_node, int nodes,
                                bool cpu_offload, double additional_buffer_factor) {
  const double total_gpus = static_cast<double>(nodes) * gpus_per_node;
  DeepSpeedEstimate e;
  if (cpu_offload) {
    e.gpu_bytes = 2 * total_params;
    e.cpu_bytes_per_node =
        total_params * std::max(4 * total_gpus, 16.0) * additional_buffer_factor;
  } else {
    e.gpu_bytes = 4 * total_params + std::floor(16 * total_params / total_gpus);
    e.cpu_bytes_per_node = total_params * 4 * gpus_per_node * additional_buffer_factor;
  }
  e.gpu_bytes = std::floor(e.gpu_bytes);
  e.cpu_bytes_per_node = std::floor(e.cpu_bytes_per_node);
  return e;
}

// ---------------------------------------------------------------------------
// Time per iteration

double ModelFlopsPerToken(const trainer::GptConfig& m) {
  const ShardParams sp = CountShardParams(m, 1, 1, 0);
  return 6.0 * static_cast<double>(sp.model) +
         12.0 * m.num_layers * static_cast<double>(m.seq_length) * m.hidden_size;
}

namespace {

// One stage's share of an iteration on one GPU, before the pipeline's bubble.
struct StageTime {
  double flops = 0, matmul = 0, memory_bound = 0, tp = 0, p2p = 0, dp = 0, pcie = 0, adam = 0;
  double busy() const { return matmul + memory_bound + tp + p2p; }
};

StageTime TimeStage(const train::TrainerConfig& c, const ClusterShape& cluster, const GpuSpec& gpu,
                    int pipeline_rank, bool pp_across_nodes) {
  StageTime t;
  const trainer::GptConfig& m = c.model;
  const train::ParallelConfig& pc = c.parallel;
  const int tp = std::max(1, pc.tensor_model_parallel_size);
  const int pp = std::max(1, pc.pipeline_model_parallel_size);
  const int vpp = pp > 1 ? std::max(1, pc.virtual_pipeline_model_parallel_size) : 1;
  const int dp = DataParallel(c, cluster), gpn = cluster.gpus_per_node, stage = pc.zero_stage;
  const ShardParams sp =
      CountShardParams(m, tp, pp, pc.zero.stage3_param_persistence_threshold, pipeline_rank);
  const bool last = pipeline_rank >= pp - 1;
  const double p = Mixed(c) ? 2.0 : 4.0, b = static_cast<double>(c.training.micro_batch_size);
  const double s = m.seq_length, h = m.hidden_size, P = static_cast<double>(sp.shard);
  const double micro_steps = std::max(1.0, static_cast<double>(c.training.global_batch_size) /
                                               (b * dp));
  const double tokens = micro_steps * b * s;  // this DP rank's tokens per iteration
  const bool ckpt = m.checkpoint_activations;
  trainer::GptConfig mt = m;
  mt.tensor_model_parallel_size = tp;
  const double V = mt.padded_vocab_size(), layers = static_cast<double>(sp.layers);

  // GEMMs: 6 FLOPs per parameter and token plus the attention matmuls 12 s h per layer
  // (8 and 16 with recomputation, which reruns the layers' forward but not the output
  // layer's), the output layer's 6 V h on the last stage; all split over tp.
  double layer_params = 0;  // 12 h^2 + 13 h for GPT-2
  for (int64_t n : LayerTensors(m, 1)) layer_params += static_cast<double>(n);
  const double per_layer = (ckpt ? 8.0 : 6.0) * layer_params + (ckpt ? 16.0 : 12.0) * s * h;
  t.flops = tokens * (layers * per_layer + (last ? 6.0 * V * h : 0.0)) / tp;
  const double peak = Mixed(c) ? gpu.peak_flops_16bit : gpu.peak_flops_fp32;
  t.matmul = t.flops / (peak * kAchievableFlopsFraction);
  // Elementwise ops (LayerNorm, GELU, dropout, softmax, residual adds) are memory-bound:
  // each byte of Korthikanti's stored activations is written in forward, read in
  // backward, and its gradient written and read once (4x; 5x with the recomputed
  // forward), at the HBM's peak; the last stage also the fp32 logits (4x).
  const double layer_bytes = (p / 2.0) * LayerActivationBytes(m, static_cast<int>(b), tp);
  const double logit_bytes = last ? 4.0 * s * b * V / tp : 0.0;
  t.memory_bound = micro_steps * ((ckpt ? 5.0 : 4.0) * layers * layer_bytes + 4.0 * logit_bytes) /
                   gpu.hbm_bytes_s;

  // A collective among GPUs of one node runs on NVLink; across nodes every GPU of the
  // node shares the node's NICs.
  const double nvlink = gpu.nvlink_bytes_s * kLinkEfficiency;
  const double network = gpu.node_network_bytes_s / std::max(1, gpn) * kLinkEfficiency;
  if (tp > 1) {
    const double bw = tp > gpn ? network : nvlink;
    // 2 all-reduces forward + 2 backward per layer (4 per layer), 2 more for the
    // recomputed forward with checkpointing; each of s*b*h in the compute precision.
    const double per = ckpt ? 6.0 : 4.0;
    t.tp = micro_steps * layers * per * 2.0 * (tp - 1) / tp * s * b * h * p / bw;
  }
  if (pp > 1) {
    // Each (chunk) micro-batch sends its activation forward and, in backward, its
    // gradient back: s*b*h*p bytes each way per stage boundary, blocking as in
    // Megatron's p2p_communication without overlap_p2p_comm.
    t.p2p = micro_steps * vpp * 2.0 * s * b * h * p / (pp_across_nodes ? network : nvlink);
  }
  if (dp > 1) {
    const bool inside = static_cast<int64_t>(tp) * pp * dp <= gpn;
    const double bw = inside ? nvlink : network, frac = (dp - 1.0) / dp, bytes = p * P;
    double passes = 2.0;                                 // stage 0/1: once per iteration
    if (stage == 2) passes = micro_steps + 1.0;          // RS per micro-batch + AG
    if (stage == 3) passes = 3.0 * micro_steps;          // AG fwd, AG bwd, RS per micro-batch
    t.dp = passes * frac * bytes / bw;
  }
  const double part = stage >= 1 ? std::ceil(P / dp) : P;
  if (pc.cpu_optimizer) {
    double bytes = micro_steps * p * part + p * part;  // gradients down, params up
    if (stage == 3 && pc.zero.offload_param.cpu()) bytes += 2.0 * micro_steps * p * part;
    t.pcie = bytes / gpu.pcie_bytes_s;
    // Each node's CPUs update the partitions of its gpn GPUs.
    t.adam = gpn * part * kCpuAdamBytesPerParam / (gpu.host_memory_bytes_s * kHostMemoryEfficiency);
  }
  if (ckpt && c.activation_checkpointing.cpu_checkpointing) {
    const RankMemory r = PlanRankMemory(c, cluster, gpu, 0, pipeline_rank);
    t.pcie += 2.0 * micro_steps * r.host_checkpoints / gpu.pcie_bytes_s;
  }
  return t;
}

}  // namespace

IterationTime PlanIterationTime(const train::TrainerConfig& c, const ClusterShape& cluster,
                                const GpuSpec& gpu) {
  IterationTime t;
  const train::ParallelConfig& pc = c.parallel;
  const int tp = std::max(1, pc.tensor_model_parallel_size);
  const int pp = std::max(1, pc.pipeline_model_parallel_size);
  const int vpp = pp > 1 ? std::max(1, pc.virtual_pipeline_model_parallel_size) : 1;
  const int dp = DataParallel(c, cluster), gpn = cluster.gpus_per_node;
  const double b = static_cast<double>(c.training.micro_batch_size);
  t.micro_batches = std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<double>(c.training.global_batch_size) / (b * dp)));
  t.tp_across_nodes = tp > gpn;
  // Adjacent stages are dp * tp ranks apart (Megatron's grid): the pipeline crosses a
  // node boundary somewhere as soon as it does not fit in one node.
  t.pp_across_nodes = pp > 1 && static_cast<int64_t>(tp) * dp * pp > gpn;

  // The pipeline runs at the pace of its slowest stage; the rest of the step (DP
  // collectives, the optimizer) after the flush, each stage with its own shard.
  StageTime slowest;
  double after = 0;
  const bool overlap = pc.zero_stage >= 1 ? pc.zero.overlap_comm : pc.overlap_grad_reduce;
  for (int r = 0; r < pp; ++r) {
    const StageTime st = TimeStage(c, cluster, gpu, r, t.pp_across_nodes);
    if (r == 0 || st.busy() > slowest.busy()) {
      slowest = st;
      t.slowest_stage = r;
    }
    const double hidden = overlap ? st.matmul + st.memory_bound : 0.0;
    after = std::max(after, st.adam + std::max(0.0, st.dp + st.pcie - hidden));
    t.dp_comm = std::max(t.dp_comm, st.dp);
    t.offload_pcie = std::max(t.offload_pcie, st.pcie);
    t.cpu_adam = std::max(t.cpu_adam, st.adam);
  }
  t.flops_per_gpu = slowest.flops;
  t.matmul = slowest.matmul;
  t.memory_bound = slowest.memory_bound;
  t.compute = slowest.matmul + slowest.memory_bound;
  t.tp_comm = slowest.tp;
  t.pp_p2p = slowest.p2p;
  t.bubble_fraction = BubbleFraction(pp, vpp, t.micro_batches);
  t.bubble = slowest.busy() * t.bubble_fraction;
  if (pp > 1 && c.model.tied_output()) {
    // The tied wte's gradient, all-reduced by its two holders (first and last stage)
    // once per iteration after the flush: 2 (2-1)/2 of p V h / tp bytes.
    trainer::GptConfig mt = c.model;
    mt.tensor_model_parallel_size = tp;
    const double p = Mixed(c) ? 2.0 : 4.0;
    const double bw = t.pp_across_nodes
                          ? gpu.node_network_bytes_s / std::max(1, gpn) * kLinkEfficiency
                          : gpu.nvlink_bytes_s * kLinkEfficiency;
    t.embedding_sync = p * mt.padded_vocab_size() * c.model.hidden_size / tp / bw;
  }
  t.total = slowest.busy() + t.bubble + t.embedding_sync + after;
  const double tokens = static_cast<double>(c.training.global_batch_size) * c.model.seq_length;
  t.tokens_per_s = t.total > 0 ? tokens / t.total : 0.0;
  const double peak = Mixed(c) ? gpu.peak_flops_16bit : gpu.peak_flops_fp32;
  t.mfu = ModelFlopsPerToken(c.model) * t.tokens_per_s / (cluster.world_size() * peak);
  return t;
}

// ---------------------------------------------------------------------------
// The whole plan

namespace {

void AddDeepSpeedEstimate(const train::TrainerConfig& c, Plan* plan) {
  const train::ParallelConfig& pc = c.parallel;
  if (plan->rank.cpu_backend || pc.zero_stage == 0) return;
  // DeepSpeed's estimators know no tensor parallel: apply them to one TP rank's
  // model (its shard), partitioned over the shard's DP peers, and count every TP
  // shard a node hosts.
  const int gpn = plan->cluster.gpus_per_node, tp = plan->tp;
  const int peers_per_node = tp <= gpn ? std::max(1, gpn / tp) : 1;
  const int nodes = tp <= gpn ? plan->cluster.nodes : plan->dp;
  const double shards_per_node = std::min(tp, gpn);
  const double P = static_cast<double>(plan->params.shard);
  plan->has_deepspeed_estimate = true;
  plan->deepspeed_stage = pc.zero_stage == 3 ? 3 : 2;
  if (pc.zero_stage == 3) {
    plan->deepspeed = EstimateZero3(P, static_cast<double>(plan->params.largest_module),
                                    peers_per_node, nodes, pc.cpu_optimizer,
                                    pc.zero.offload_param.cpu(), /*zero_init=*/true);
  } else {
    plan->deepspeed = EstimateZero2(P, peers_per_node, nodes, pc.cpu_optimizer);
  }
  plan->deepspeed.cpu_bytes_per_node *= shards_per_node;
  const RankMemory& r = plan->rank;
  const double ours_states = r.params + r.grads + r.optimizer + r.zero3_window;
  std::string note = "DeepSpeed's figures count model states only (params, grads, optimizer";
  note += plan->deepspeed_stage == 3 ? ", plus 4 B x the largest module as a gathered fp32 "
                                       "temporary)"
                                     : "; its ZeRO-2 GPU figure keeps a full 16-bit gradient "
                                       "copy, 4 B/param + 16 B/param/GPU)";
  note += " and multiply host memory by additional_buffer_factor 1.5";
  if (!pc.cpu_optimizer) note += " (without offload their host figure is the model each rank "
                                 "loads at start, which gpt-rank does not count)";
  note += ". Ours: model states " + GiBText(ours_states) + " per GPU" +
          (pc.zero_stage == 3 ? " (window: max_live_parameters + prefetch bucket)" : "") +
          ", host " + GiBText(plan->host_per_node) + " per node without the 1.5 factor; "
          "activations, logits, buckets and the CUDA reserve are counted separately.";
  plan->deepspeed_note = note;
}

void AddAdvice(const train::TrainerConfig& c, Plan* plan) {
  const RankMemory& r = plan->rank;
  const train::ParallelConfig& pc = c.parallel;
  const auto& ac = c.activation_checkpointing;
  auto add = [plan](const std::string& a) { plan->advice.push_back(a); };
  if (!plan->fits_device) {
    const std::string what = r.cpu_backend ? "memory per rank (CPU backend)" : "GPU memory";
    add(what + " overflows: " + GiBText(r.device_total) + " needed, " +
        GiBText(plan->usable_device_bytes) + " available");
    if (plan->largest_micro_batch > 0 && plan->largest_micro_batch < r.micro_batch) {
      add("lower training.micro_batch_size to " + std::to_string(plan->largest_micro_batch) +
          " (the largest that fits)");
    }
    if (!c.model.checkpoint_activations) {
      add("turn on training.checkpoint_activations (activations " +
          GiBText(r.activations_no_ckpt) + " -> " + GiBText(r.activations_ckpt) + ")");
    } else if (!r.cpu_backend) {
      if (!ac.partition_activations && plan->tp > 1)
        add("set activation_checkpointing.partition_activations (checkpoints / tp)");
      if (!ac.cpu_checkpointing)
        add("set activation_checkpointing.cpu_checkpointing (checkpoints " +
            GiBText(r.checkpoints) + " to host memory)");
    }
    if (pc.zero_stage < 3 && plan->dp > 1)
      add("raise zero_optimization.stage (3 partitions the parameters over " +
          std::to_string(plan->dp) + " data-parallel ranks)");
    if (!pc.cpu_optimizer && !r.cpu_backend)
      add("offload the optimizer: zero_optimization.offload_optimizer.device \"cpu\" (" +
          GiBText(r.optimizer) + " to host memory)");
    if (pc.zero_stage == 3 && !pc.zero.offload_param.cpu() && !r.cpu_backend)
      add("offload the parameters: zero_optimization.offload_param.device \"cpu\"");
    if (plan->tp < plan->cluster.gpus_per_node &&
        trainer::CheckTensorParallel(c.model, plan->tp * 2).ok())
      add("raise parallel.tensor_model_parallel_size to " + std::to_string(plan->tp * 2) +
          " (divides the heads" + (c.model.group_query_attention ? " and query groups" : "") +
          "; stays inside a node)");
  }
  if (!plan->fits_host) {
    add("host memory overflows: " + GiBText(plan->host_per_node) + " per node needed, " +
        GiBText(plan->host_memory_bytes) + " per node (--host-memory-gb if yours have more)");
    if (pc.zero_stage == 3 && pc.zero.offload_param.cpu())
      add("keep the parameters on the GPU: zero_optimization.offload_param.device \"none\"");
    if (ac.cpu_checkpointing) add("turn off activation_checkpointing.cpu_checkpointing");
    if (pc.zero_stage < 3 && plan->dp > 1)
      add("raise zero_optimization.stage to 3 (the host keeps 1/dp of the optimizer)");
    add("use more nodes: the offloaded state is divided by the data-parallel size");
  }
}

}  // namespace

Plan MakePlan(const train::TrainerConfig& c, const ClusterShape& cluster, const GpuSpec& gpu,
              double host_memory_bytes, double train_tokens) {
  Plan plan;
  plan.cluster = cluster;
  plan.gpu = gpu;
  plan.host_memory_bytes = host_memory_bytes > 0 ? host_memory_bytes : gpu.host_memory_bytes;
  plan.tp = std::max(1, c.parallel.tensor_model_parallel_size);
  plan.pp = std::max(1, c.parallel.pipeline_model_parallel_size);
  plan.vpp = plan.pp > 1 ? std::max(1, c.parallel.virtual_pipeline_model_parallel_size) : 1;
  plan.dp = DataParallel(c, cluster);
  // A node's ranks may belong to different stages: each is held to the worst stage.
  auto evaluate = [&](const RankMemory& r, bool* dev_ok, bool* host_ok, double* per_node) {
    const int gpn = cluster.gpus_per_node;
    if (r.cpu_backend) {  // the ranks of a node share its memory
      *per_node = gpn * r.device_total;
      *dev_ok = *host_ok = *per_node <= plan.host_memory_bytes;
    } else {
      *per_node = gpn * r.host_total;
      *dev_ok = r.device_total <= gpu.memory_bytes;
      *host_ok = *per_node <= plan.host_memory_bytes;
    }
  };
  for (int s = 0; s < plan.pp; ++s) {
    plan.stages.push_back(PlanRankMemory(c, cluster, gpu, 0, s));
    const RankMemory& r = plan.stages.back();
    const RankMemory& w = plan.stages[plan.worst_stage];
    if (r.device_total + r.host_total > w.device_total + w.host_total) plan.worst_stage = s;
  }
  plan.rank = plan.stages[plan.worst_stage];
  plan.params =
      CountShardParams(c.model, plan.tp, plan.pp,
                       c.parallel.zero.stage3_param_persistence_threshold, plan.worst_stage);
  evaluate(plan.rank, &plan.fits_device, &plan.fits_host, &plan.host_per_node);
  plan.usable_device_bytes = plan.rank.cpu_backend
                                 ? plan.host_memory_bytes / cluster.gpus_per_node
                                 : gpu.memory_bytes;
  // Memory grows with the micro-batch; the first that does not fit ends the search.
  constexpr int64_t kMaxMicroBatch = 4096;
  for (int64_t b = 1; b <= kMaxMicroBatch; ++b) {
    bool dev = false, host = false;
    double per_node = 0;
    evaluate(PlanWorstStageMemory(c, cluster, gpu, b), &dev, &host, &per_node);
    if (!dev || !host) break;
    plan.largest_micro_batch = b;
  }
  plan.train_tokens_given = train_tokens > 0;
  plan.train_tokens = train_tokens > 0 ? train_tokens
                                       : static_cast<double>(c.training.train_iters) *
                                             c.training.global_batch_size * c.model.seq_length;
  if (!plan.rank.cpu_backend) {
    plan.time = PlanIterationTime(c, cluster, gpu);
    if (plan.time.tokens_per_s > 0) plan.train_time_s = plan.train_tokens / plan.time.tokens_per_s;
  }
  AddDeepSpeedEstimate(c, &plan);
  AddAdvice(c, &plan);
  return plan;
}

}  // namespace gpt_rank::plan
