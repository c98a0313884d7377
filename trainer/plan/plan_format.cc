// Text and JSON views of a Plan (see plan_format.h). Sizes print in GiB (2^30 bytes),
// times in seconds; JSON carries raw bytes and seconds.
#include "trainer/plan/plan_format.h"

#include <cstdarg>
#include <cstdio>

namespace gpt_rank::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

void Line(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Line(std::string* out, const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  *out += buf;
  *out += "\n";
}

void Row(std::string* out, const char* name, double bytes, const char* note = "") {
  Line(out, "  %-34s %9.2f GiB%s%s", name, bytes / kGiB, *note ? "  " : "", note);
}

std::string Layout(const Plan& p, const train::TrainerConfig& c) {
  char buf[256], vpp[32] = "";
  if (p.vpp > 1) std::snprintf(vpp, sizeof(vpp), " (x %d virtual)", p.vpp);
  std::snprintf(buf, sizeof(buf), "tp %d x pp %d%s x dp %d, ZeRO stage %d, %s%s%s", p.tp, p.pp, vpp,
                p.dp, c.parallel.zero_stage, c.parallel.precision.c_str(),
                c.parallel.cpu_optimizer ? ", optimizer offloaded" : "",
                c.parallel.zero.offload_param.cpu() && c.parallel.zero_stage == 3
                    ? ", params offloaded"
                    : "");
  return buf;
}

void Stages(std::string* out, const Plan& p, const train::TrainerConfig& c);

void Memory(std::string* out, const Plan& p, const train::TrainerConfig& c) {
  const RankMemory& r = p.rank;
  const bool ckpt = c.model.checkpoint_activations;
  char stage[96] = "";
  if (p.pp > 1) {
    std::snprintf(stage, sizeof(stage), ", pipeline stage %d: the one that needs the most",
                  p.worst_stage);
  }
  if (r.cpu_backend) {
    Line(out,
         "per rank (CPU backend, fp32 buffers%s; the lead's RSS check compares with this):", stage);
  } else {
    Line(out, "per GPU (%s%s):", p.gpu.name, stage);
  }
  Row(out, "parameters", r.params, c.parallel.zero_stage == 3 ? "(1/dp partition)" : "");
  Row(out, "gradients", r.grads);
  Row(out, r.cpu_backend ? "optimizer (Adam m, v)" : "optimizer (master, m, v)", r.optimizer,
      c.parallel.cpu_optimizer && !r.cpu_backend ? "(on the host)" : "");
  if (c.parallel.zero_stage == 3) {
    char note[128];
    std::snprintf(note, sizeof(note), "(%lld persistent params, max_live %lld + prefetch %lld)",
                  static_cast<long long>(p.params.persistent),
                  static_cast<long long>(c.parallel.zero.stage3_max_live_parameters),
                  static_cast<long long>(c.parallel.zero.stage3_prefetch_bucket_size));
    Row(out, "ZeRO-3 live window", r.zero3_window, note);
  }
  Row(out, "activations (as configured)", r.activations,
      ckpt ? (c.activation_checkpointing.cpu_checkpointing ? "(checkpoints on the host)"
              : c.activation_checkpointing.partition_activations ? "(checkpoints / tp)" : "")
           : "(no checkpointing)");
  Row(out, "  without checkpointing", r.activations_no_ckpt);
  Row(out, "  with checkpointing", r.activations_ckpt);
  if (r.cpu_backend) {
    Row(out, "backward buffers", r.backward);
    if (r.buckets > 0) Row(out, "communication scratch (gloo)", r.buckets);
    Row(out, "process (code, libraries, threads)", r.runtime_reserve);
  } else {
    Row(out, "logits (fp32, s*b*V/tp)", r.logits);
    Row(out, "communication buckets", r.buckets);
    Row(out, "CUDA context, NCCL, cuBLAS", r.runtime_reserve);
  }
  Row(out, "total", r.device_total);
  Line(out, "  %-34s %9.2f GiB  -> %s", r.cpu_backend ? "available per rank" : "device memory",
       p.usable_device_bytes / kGiB, p.fits_device ? "fits" : "DOES NOT FIT");
  Stages(out, p, c);
  Line(out, "per node (%d ranks):", p.cluster.gpus_per_node);
  if (!r.cpu_backend) {
    Row(out, "host: offloaded optimizer", p.cluster.gpus_per_node * r.host_optimizer,
        "(fp32 master, m, v, grads)");
    Row(out, "host: offloaded parameters", p.cluster.gpus_per_node * r.host_params);
    Row(out, "host: activation checkpoints", p.cluster.gpus_per_node * r.host_checkpoints);
  }
  Row(out, "host total", p.host_per_node, r.host_pinned ? "(pinned)" : "");
  Line(out, "  %-34s %9.2f GiB  -> %s", "host memory", p.host_memory_bytes / kGiB,
       p.fits_host ? "fits" : "DOES NOT FIT");
  Line(out, "largest micro-batch that fits: %lld (configured %lld)",
       static_cast<long long>(p.largest_micro_batch), static_cast<long long>(r.micro_batch));
}

// One line per pipeline stage: its layers, what the schedule keeps in flight, its memory.
void Stages(std::string* out, const Plan& p, const train::TrainerConfig& c) {
  if (p.pp <= 1) return;
  const int64_t m = c.num_micro_batches();
  Line(out, "pipeline stages (%s, %lld micro-batches per iteration; %s):",
       p.vpp > 1 ? "interleaved" : "1F1B", static_cast<long long>(m),
       p.vpp > 1 ? "in flight: model-chunk micro-batches" : "in flight: micro-batches");
  for (const RankMemory& r : p.stages) {
    const int64_t first = r.pipeline_rank * r.layers;
    const bool head = r.pipeline_rank == p.pp - 1, embed = r.pipeline_rank == 0;
    char what[128];
    std::snprintf(what, sizeof(what), "layers %lld-%lld%s%s", static_cast<long long>(first),
                  static_cast<long long>(first + r.layers - 1), embed ? " + embedding" : "",
                  head ? " + final LN, tied wte, loss" : "");
    Line(out,
         "  stage %-2d %-42s %3lld in flight (%5.0f layer acts)  params %7.2f  acts %7.2f"
         "  total %7.2f GiB%s",
         r.pipeline_rank, what, static_cast<long long>(r.in_flight), r.layers_held, r.params / kGiB,
         r.activations / kGiB, r.device_total / kGiB,
         r.pipeline_rank == p.worst_stage ? "  <- planned" : "");
  }
}

void Time(std::string* out, const Plan& p, const train::TrainerConfig& c) {
  if (p.rank.cpu_backend) {
    Line(out, "time per iteration: not modeled for the CPU backend");
    return;
  }
  const IterationTime& t = p.time;
  Line(out,
       "time per iteration (roofline; GEMMs at %.0f%% of the dense peak, elementwise ops at "
       "the HBM peak, collectives at %.0f%% of link peak, CPU Adam at %.0f%% of host memory "
       "bandwidth)%s:",
       kAchievableFlopsFraction * 100, kLinkEfficiency * 100, kHostMemoryEfficiency * 100,
       p.pp > 1 ? (", slowest stage " + std::to_string(t.slowest_stage)).c_str() : "");
  Line(out, "  %-34s %9.3f s  (%.3g FLOP per GPU: 6 per param and token + 12 L s h%s)", "GEMMs",
       t.matmul, t.flops_per_gpu, c.model.checkpoint_activations ? ", x4/3 recomputation" : "");
  Line(out, "  %-34s %9.3f s  (%dx the stored activations at the HBM peak)", "memory-bound ops",
       t.memory_bound, c.model.checkpoint_activations ? 5 : 4);
  Line(out, "  %-34s %9.3f s%s", "TP all-reduces", t.tp_comm,
       t.tp_across_nodes ? "  (across nodes: the network)" : "  (NVLink)");
  if (p.pp > 1) {
    Line(out, "  %-34s %9.3f s%s", "pipeline send/receive", t.pp_p2p,
         t.pp_across_nodes ? "  (across nodes: the network)" : "  (NVLink)");
    Line(out, "  %-34s %9.3f s  (bubble fraction (pp-1)/%s = %.4f, m = %lld)", "pipeline bubble",
         t.bubble, p.vpp > 1 ? "(m vpp)" : "m", t.bubble_fraction,
         static_cast<long long>(t.micro_batches));
    Line(out, "  %-34s %9.3f s", "tied embedding all-reduce", t.embedding_sync);
  }
  Line(out, "  %-34s %9.3f s", "DP gradients / parameter gathers", t.dp_comm);
  Line(out, "  %-34s %9.3f s", "offload PCIe transfers", t.offload_pcie);
  Line(out, "  %-34s %9.3f s", "CPU Adam", t.cpu_adam);
  Line(out, "  %-34s %9.3f s  (%s; %.0f tokens/s, MFU %.1f%%)", "total", t.total,
       (c.parallel.zero_stage >= 1 ? c.parallel.zero.overlap_comm : c.parallel.overlap_grad_reduce)
           ? "DP and PCIe traffic overlapped with compute"
           : "no overlap",
       t.tokens_per_s, t.mfu * 100);
  Line(out, "training time for %.4g tokens (%s): %.1f hours = %.2f days on %d GPUs", p.train_tokens,
       p.train_tokens_given ? "--train-tokens" : "train_iters x global batch x seq",
       p.train_time_s / 3600, p.train_time_s / 86400, p.cluster.world_size());
}

}  // namespace

std::string FormatPlanText(const Plan& p, const train::TrainerConfig& c) {
  std::string out;
  const ShardParams& sp = p.params;
  Line(&out, "cluster: %d node(s) x %d GPU(s) = %d ranks of %s; %s", p.cluster.nodes,
       p.cluster.gpus_per_node, p.cluster.world_size(), p.gpu.name, Layout(p, c).c_str());
  Line(&out, "node: %s", p.gpu.node);
  Line(&out, "parameters: %lld (%.3f B); per model shard %lld (%.3f B), largest module %lld",
       static_cast<long long>(sp.model), sp.model / 1e9, static_cast<long long>(sp.shard),
       sp.shard / 1e9, static_cast<long long>(sp.largest_module));
  Memory(&out, p, c);
  Time(&out, p, c);
  if (p.has_deepspeed_estimate) {
    Line(&out, "DeepSpeed's estimate_zero%d_model_states_mem_needs for the same layout:",
         p.deepspeed_stage);
    Line(&out, "  %-34s %9.2f GiB", "per GPU", p.deepspeed.gpu_bytes / kGiB);
    Line(&out, "  %-34s %9.2f GiB", "per node (CPU)", p.deepspeed.cpu_bytes_per_node / kGiB);
    out += "  " + p.deepspeed_note + "\n";
  }
  if (p.fits()) {
    Line(&out, "verdict: fits");
  } else {
    Line(&out, "verdict: DOES NOT FIT");
    for (const std::string& a : p.advice) out += "  - " + a + "\n";
  }
  return out;
}

nlohmann::json PlanToJson(const Plan& p, const train::TrainerConfig& c) {
  const RankMemory& r = p.rank;
  nlohmann::json j;
  j["cluster"] = {{"nodes", p.cluster.nodes},
                  {"gpus_per_node", p.cluster.gpus_per_node},
                  {"world_size", p.cluster.world_size()},
                  {"gpu", p.gpu.name},
                  {"tp", p.tp},
                  {"pp", p.pp},
                  {"vpp", p.vpp},
                  {"dp", p.dp},
                  {"zero_stage", c.parallel.zero_stage},
                  {"precision", c.parallel.precision},
                  {"backend", r.cpu_backend ? "cpu" : "cuda"}};
  j["parameters"] = {{"model", p.params.model},
                     {"shard", p.params.shard},
                     {"layer", p.params.layer},
                     {"largest_module", p.params.largest_module},
                     {"persistent", p.params.persistent}};
  j["per_rank_bytes"] = {{"micro_batch", r.micro_batch},
                         {"pipeline_rank", r.pipeline_rank},
                         {"in_flight", r.in_flight},
                         {"params", r.params},
                         {"grads", r.grads},
                         {"optimizer", r.optimizer},
                         {"zero3_window", r.zero3_window},
                         {"activations", r.activations},
                         {"activations_no_checkpointing", r.activations_no_ckpt},
                         {"activations_checkpointing", r.activations_ckpt},
                         {"checkpoints", r.checkpoints},
                         {"backward", r.backward},
                         {"logits", r.logits},
                         {"buckets", r.buckets},
                         {"runtime_reserve", r.runtime_reserve},
                         {"total", r.device_total},
                         {"available", p.usable_device_bytes},
                         {"host_optimizer", r.host_optimizer},
                         {"host_params", r.host_params},
                         {"host_checkpoints", r.host_checkpoints},
                         {"host_total", r.host_total}};
  j["per_node_bytes"] = {{"host_total", p.host_per_node},
                         {"host_memory", p.host_memory_bytes},
                         {"pinned", r.host_pinned}};
  nlohmann::json stages = nlohmann::json::array();
  for (const RankMemory& s : p.stages) {
    stages.push_back({{"pipeline_rank", s.pipeline_rank},
                      {"layers", s.layers},
                      {"in_flight", s.in_flight},
                      {"layers_held", s.layers_held},
                      {"params", s.params},
                      {"activations", s.activations},
                      {"logits", s.logits},
                      {"total", s.device_total},
                      {"host_total", s.host_total}});
  }
  j["pipeline"] = {{"pp", p.pp},
                   {"vpp", p.vpp},
                   {"schedule", p.pp <= 1   ? "none"
                                : p.vpp > 1 ? "interleaved"
                                            : "1f1b"},
                   {"micro_batches", c.num_micro_batches()},
                   {"worst_stage", p.worst_stage},
                   {"stages_bytes", stages}};
  j["fits"] = {{"device", p.fits_device}, {"host", p.fits_host}, {"all", p.fits()}};
  j["largest_micro_batch"] = p.largest_micro_batch;
  if (!r.cpu_backend) {
    const IterationTime& t = p.time;
    j["time_s"] = {{"compute", t.compute},
                   {"matmul", t.matmul},
                   {"memory_bound", t.memory_bound},
                   {"tp_comm", t.tp_comm},
                   {"pp_p2p", t.pp_p2p},
                   {"bubble", t.bubble},
                   {"bubble_fraction", t.bubble_fraction},
                   {"micro_batches", t.micro_batches},
                   {"embedding_sync", t.embedding_sync},
                   {"dp_comm", t.dp_comm},
                   {"offload_pcie", t.offload_pcie},
                   {"cpu_adam", t.cpu_adam},
                   {"total", t.total},
                   {"tokens_per_s", t.tokens_per_s},
                   {"mfu", t.mfu},
                   {"flops_per_gpu", t.flops_per_gpu},
                   {"slowest_stage", t.slowest_stage},
                   {"tp_across_nodes", t.tp_across_nodes},
                   {"pp_across_nodes", t.pp_across_nodes}};
    j["training"] = {{"tokens", p.train_tokens},
                     {"tokens_from", p.train_tokens_given ? "--train-tokens" : "config"},
                     {"seconds", p.train_time_s},
                     {"hours", p.train_time_s / 3600},
                     {"days", p.train_time_s / 86400}};
    j["assumptions"] = {{"achievable_flops_fraction", kAchievableFlopsFraction},
                        {"link_efficiency", kLinkEfficiency},
                        {"host_memory_efficiency", kHostMemoryEfficiency}};
  }
  if (p.has_deepspeed_estimate) {
    j["deepspeed_estimate"] = {{"function", "estimate_zero" + std::to_string(p.deepspeed_stage) +
                                                "_model_states_mem_needs"},
                               {"gpu_bytes", p.deepspeed.gpu_bytes},
                               {"cpu_bytes_per_node", p.deepspeed.cpu_bytes_per_node},
                               {"note", p.deepspeed_note}};
  }
  j["advice"] = p.advice;
  return j;
}

}  // namespace gpt_rank::plan
