// DeepSpeed's blocks of the job spec (see deepspeed_config.h). Defaults and names are
// DeepSpeed's (runtime/zero/config.py, runtime/zero/offload_config.py,
// runtime/activation_checkpointing/config.py, runtime/fp16 config); the key tables
// below are the list of what is accepted, and the legacy tables the old spellings.
#include "trainer/train/deepspeed_config.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace gpt_rank::train {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Key tables

const std::vector<std::string> kZeroKeys = {"stage",
                                            "reduce_bucket_size",
                                            "allgather_bucket_size",
                                            "overlap_comm",
                                            "contiguous_gradients",
                                            "reduce_scatter",
                                            "allgather_partitions",
                                            "round_robin_gradients",
                                            "stage3_prefetch_bucket_size",
                                            "stage3_max_live_parameters",
                                            "stage3_max_reuse_distance",
                                            "stage3_param_persistence_threshold",
                                            "stage3_gather_16bit_weights_on_model_save",
                                            "offload_optimizer",
                                            "offload_param"};

constexpr const char* kNoEffect = "a DeepSpeed key with no effect in gpt-rank; ignored";
// Deprecated names still in DeepSpeed's own examples (read as the new key), and real
// DeepSpeed keys that change nothing here (accepted so a pasted config loads).
const std::vector<LegacyKey> kZeroLegacy = {
    {"cpu_offload", "offload_optimizer",
     "deprecated DeepSpeed name; read as offload_optimizer.device \"cpu\" (write that instead)"},
    {"cpu_offload_params", "offload_param",
     "deprecated DeepSpeed name; read as offload_param.device \"cpu\" (write that instead)"},
    {"cpu_offload_param", "offload_param",
     "deprecated DeepSpeed name; read as offload_param.device \"cpu\" (write that instead)"},
    {"cpu_offload_use_pin_memory", "pin_memory",
     "deprecated DeepSpeed name; read as offload_optimizer.pin_memory and "
     "offload_param.pin_memory (write those instead)"},
    {"stage3_param_persitance_threshold", "stage3_param_persistence_threshold",
     "misspelled key (DeepSpeedExamples' ZeRO-3 configs); read as "
     "stage3_param_persistence_threshold. Old DeepSpeed ignored it silently, so a run "
     "reproduced from such a config used the default 1e5"},
    {"stage3_gather_fp16_weights_on_model_save", "stage3_gather_16bit_weights_on_model_save",
     "deprecated DeepSpeed name; read as stage3_gather_16bit_weights_on_model_save"},
    {"sub_group_size", "", kNoEffect},
    {"load_from_fp32_weights", "", kNoEffect},
    {"elastic_checkpoint", "", kNoEffect},
    {"ignore_unused_parameters", "", kNoEffect},
    {"legacy_stage1", "", kNoEffect},
    {"stage3_model_persistence_threshold", "", kNoEffect},
};

const std::vector<std::string> kOffloadOptimizerKeys = {
    "device", "nvme_path", "buffer_count", "pin_memory", "pipeline_read", "pipeline_write",
    "fast_init", "ratio"};
const std::vector<std::string> kOffloadParamKeys = {"device",     "nvme_path",  "buffer_count",
                                                    "buffer_size", "max_in_cpu", "pin_memory"};
const std::vector<std::string> kActivationCheckpointingKeys = {
    "partition_activations",           "cpu_checkpointing", "contiguous_memory_optimization",
    "number_checkpoints",              "synchronize_checkpoint_boundary", "profile"};
// DeepSpeed's "fp16" and "bf16" blocks.
const std::vector<std::string> kFp16Keys = {
    "enabled",    "loss_scale",     "initial_scale_power",    "loss_scale_window",
    "hysteresis", "min_loss_scale", "consecutive_hysteresis", "auto_cast"};
const std::vector<std::string> kBf16Keys = {"enabled"};

// ---------------------------------------------------------------------------
// zero_optimization

void ParseOffload(const json* z, const char* name, const std::vector<std::string>& keys,
                  ConfigParser* p, OffloadConfig* off) {
  const std::string where = std::string("zero_optimization.") + name;
  const json* o = z == nullptr ? nullptr : p->Section(*z, name, where, keys);
  if (o == nullptr) return;
  if (const json* d = ConfigParser::Find(o, "device"); d != nullptr) {
    const std::string dev = d->is_string() ? d->get<std::string>() : "";
    if (dev == "nvme") {
      p->Error(where + ".device",
               "\"nvme\" (ZeRO-Infinity's NVMe swapping) is not supported by gpt-rank; use "
               "\"cpu\" (host memory) or \"none\"");
    } else if (dev != "cpu" && dev != "none") {
      p->Error(where + ".device", "expected \"none\" or \"cpu\", got " + Shown(*d));
    } else {
      off->device = dev;
    }
  }
  p->Bool(o, where, "pin_memory", &off->pin_memory);
  p->String(o, where, "nvme_path", true, &off->nvme_path);
  p->Count(o, where, "buffer_count", &off->buffer_count);
  p->Count(o, where, "buffer_size", &off->buffer_size);
  p->Count(o, where, "max_in_cpu", &off->max_in_cpu);
  p->Bool(o, where, "fast_init", &off->fast_init);
  bool unused = false;
  p->Bool(o, where, "pipeline_read", &unused);
  p->Bool(o, where, "pipeline_write", &unused);
  double ratio = 1.0;
  p->Number(o, where, "ratio", 0.0, false, 1.0, "a number in [0, 1]", &ratio);
  if (ratio != 1.0) {
    p->Error(where + ".ratio", "partial optimizer offload is not supported by gpt-rank; "
                               "remove it (1.0: all of the optimizer on the host)");
  }
}

// The deprecated booleans: true sets the new key's device to "cpu"; they contradict
// an explicit device "none".
void ApplyLegacyOffload(const json* z, const char* legacy, const char* name, ConfigParser* p,
                        OffloadConfig* off) {
  const json* v = ConfigParser::Find(z, legacy);
  if (v == nullptr) return;
  bool on = false;
  p->Bool(z, "zero_optimization", legacy, &on);
  if (!on) return;
  const json* o = ConfigParser::Find(z, name);
  const json* dev = o != nullptr && o->is_object() ? ConfigParser::Find(o, "device") : nullptr;
  if (dev != nullptr && *dev == "none") {
    p->Error(std::string("zero_optimization.") + legacy,
             std::string("true contradicts zero_optimization.") + name +
                 ".device \"none\"; keep one of them");
  }
  off->device = "cpu";
}

}  // namespace

void ParseZeroOptimization(const json& root, ConfigParser* p, TrainerConfig* c) {
  ParallelConfig& pc = c->parallel;
  ZeroConfig& z = pc.zero;
  z.stage = pc.zero_stage;  // parallel.zero_stage, parsed before
  const json* zo = p->Section(root, "zero_optimization", kZeroKeys, kZeroLegacy);
  const std::string s = "zero_optimization";
  if (zo != nullptr && zo->contains("stage")) {
    int stage = 0;
    p->Int(zo, s, "stage", 0, "0, 1, 2 or 3", &stage);
    if (stage > 3) p->Error("zero_optimization.stage", "expected 0, 1, 2 or 3, got " +
                                                          std::to_string(stage));
    const json* par = root.contains("parallel") ? &root["parallel"] : nullptr;
    if (ConfigParser::Find(par, "zero_stage") != nullptr && stage != pc.zero_stage) {
      p->Error("zero_optimization.stage",
               std::to_string(stage) + " disagrees with parallel.zero_stage = " +
                   std::to_string(pc.zero_stage) + "; keep one of them");
    }
    z.stage = std::min(stage, 3);
  }
  p->Count(zo, s, "reduce_bucket_size", &z.reduce_bucket_size);
  p->Count(zo, s, "allgather_bucket_size", &z.allgather_bucket_size);
  z.overlap_comm = z.stage == 3;  // DeepSpeed's dynamic default
  p->Bool(zo, s, "overlap_comm", &z.overlap_comm);
  p->Bool(zo, s, "contiguous_gradients", &z.contiguous_gradients);
  p->Bool(zo, s, "reduce_scatter", &z.reduce_scatter);
  p->Bool(zo, s, "allgather_partitions", &z.allgather_partitions);
  p->Bool(zo, s, "round_robin_gradients", &z.round_robin_gradients);
  p->Count(zo, s, "stage3_prefetch_bucket_size", &z.stage3_prefetch_bucket_size);
  p->Count(zo, s, "stage3_max_live_parameters", &z.stage3_max_live_parameters);
  p->Count(zo, s, "stage3_max_reuse_distance", &z.stage3_max_reuse_distance);
  // The misspelled key first, so the correct one wins; both given must agree.
  int64_t persitance = -1;
  p->Count(zo, s, "stage3_param_persitance_threshold", &persitance);
  if (persitance >= 0) z.stage3_param_persistence_threshold = persitance;
  p->Count(zo, s, "stage3_param_persistence_threshold", &z.stage3_param_persistence_threshold);
  if (persitance >= 0 && persitance != z.stage3_param_persistence_threshold) {
    p->Error("zero_optimization.stage3_param_persitance_threshold",
             "disagrees with stage3_param_persistence_threshold; remove the misspelled key");
  }
  p->Bool(zo, s, "stage3_gather_fp16_weights_on_model_save",
          &z.stage3_gather_16bit_weights_on_model_save);
  p->Bool(zo, s, "stage3_gather_16bit_weights_on_model_save",
          &z.stage3_gather_16bit_weights_on_model_save);
  bool pin = false;
  p->Bool(zo, s, "cpu_offload_use_pin_memory", &pin);
  z.offload_optimizer.pin_memory = z.offload_param.pin_memory = pin;
  ApplyLegacyOffload(zo, "cpu_offload", "offload_optimizer", p, &z.offload_optimizer);
  ApplyLegacyOffload(zo, "cpu_offload_params", "offload_param", p, &z.offload_param);
  ApplyLegacyOffload(zo, "cpu_offload_param", "offload_param", p, &z.offload_param);
  ParseOffload(zo, "offload_optimizer", kOffloadOptimizerKeys, p, &z.offload_optimizer);
  ParseOffload(zo, "offload_param", kOffloadParamKeys, p, &z.offload_param);

  // Megatron's --cpu-optimizer and DeepSpeed's offload_optimizer say the same thing.
  const json* par = root.contains("parallel") ? &root["parallel"] : nullptr;
  const bool cpu_opt_given = ConfigParser::Find(par, "cpu_optimizer") != nullptr;
  if (cpu_opt_given && pc.cpu_optimizer && z.offload_optimizer.device == "none" &&
      zo != nullptr && zo->contains("offload_optimizer")) {
    p->Error("parallel.cpu_optimizer",
             "true contradicts zero_optimization.offload_optimizer.device \"none\"; keep one");
  }
  if (pc.cpu_optimizer) z.offload_optimizer.device = "cpu";
  pc.cpu_optimizer = z.offload_optimizer.cpu();
  if (z.offload_param.cpu() && z.stage != 3) {
    p->Error("zero_optimization.offload_param",
             "needs ZeRO stage 3 (only partitioned parameters can live on the host; "
             "DeepSpeed refuses it too); set zero_optimization.stage to 3 or remove it");
  }
  pc.zero_stage = z.stage;
}

void ParseActivationCheckpointing(const json& root, ConfigParser* p, TrainerConfig* c) {
  ActivationCheckpointingConfig& a = c->activation_checkpointing;
  const std::string s = "activation_checkpointing";
  const json* ac = p->Section(root, s, kActivationCheckpointingKeys);
  bool partition = false, cpu = false;
  p->Bool(ac, s, "partition_activations", &partition);
  p->Bool(ac, s, "cpu_checkpointing", &cpu);
  a.partition_activations = a.partition_activations || partition;
  a.cpu_checkpointing = a.cpu_checkpointing || cpu;
  p->Bool(ac, s, "contiguous_memory_optimization", &a.contiguous_memory_optimization);
  if (const json* n = ConfigParser::Find(ac, "number_checkpoints"); n != nullptr && !n->is_null()) {
    p->Int(ac, s, "number_checkpoints", 1, "a positive integer or null", &a.number_checkpoints);
  }
  p->Bool(ac, s, "synchronize_checkpoint_boundary", &a.synchronize_checkpoint_boundary);
  p->Bool(ac, s, "profile", &a.profile);
  if ((a.partition_activations || a.cpu_checkpointing) && !c->model.checkpoint_activations) {
    p->Warn(a.partition_activations ? "activation_checkpointing.partition_activations"
                                    : "activation_checkpointing.cpu_checkpointing",
            "has no effect without training.checkpoint_activations: true");
  }
}

// ---------------------------------------------------------------------------
// Batch keys and precision

void ParseDeepSpeedBatch(const json& root, ConfigParser* p, TrainerConfig* c) {
  TrainingConfig& tr = c->training;
  const int64_t dp = c->parallel.data_parallel_size();
  int64_t ds_micro = 0, ds_global = 0, ds_gas = 0;
  double ds_clip = -1.0;
  p->Int(&root, "", "train_micro_batch_size_per_gpu", 1, "a positive integer", &ds_micro);
  p->Int(&root, "", "train_batch_size", 1, "a positive integer", &ds_global);
  p->Int(&root, "", "gradient_accumulation_steps", 1, "a positive integer", &ds_gas);
  p->Number(&root, "", "gradient_clipping", 0.0, false, 1e300, "a non-negative number", &ds_clip);
  const json* t = ConfigParser::Find(&root, "training");
  auto given = [&](const char* key) { return ConfigParser::Find(t, key) != nullptr; };
  auto agree = [&](const char* ds_key, int64_t ds, const char* mg_key, int64_t* mg) {
    if (ds == 0) return;
    if (given(mg_key) && *mg != ds) {
      p->Error(ds_key, std::to_string(ds) + " disagrees with training." + mg_key + " = " +
                           std::to_string(*mg));
    }
    *mg = ds;
  };
  agree("train_micro_batch_size_per_gpu", ds_micro, "micro_batch_size", &tr.micro_batch_size);
  agree("train_batch_size", ds_global, "global_batch_size", &tr.global_batch_size);
  if (ds_clip >= 0.0) {
    if (given("clip_grad") && ds_clip != tr.clip_grad) {
      p->Error("gradient_clipping", "disagrees with training.clip_grad");
    }
    tr.clip_grad = ds_clip;
  }
  if (tr.global_batch_size == 0) {
    // Megatron's default is one micro-batch per DP rank; with pipeline parallel that
    // leaves all stages but one idle, so the default is pp micro-batches (the fewest
    // that fill the 1F1B pipeline; CheckPipeline refuses fewer when they are given).
    const int64_t steps =
        ds_gas > 0 ? ds_gas : std::max(1, c->parallel.pipeline_model_parallel_size);
    tr.global_batch_size = tr.micro_batch_size * dp * steps;
  }
  if (ds_gas != 0 && tr.global_batch_size != tr.micro_batch_size * dp * ds_gas) {
    p->Error("gradient_accumulation_steps",
             "train_batch_size (" + std::to_string(tr.global_batch_size) + ") != micro batch (" +
                 std::to_string(tr.micro_batch_size) + ") * data parallel (" +
                 std::to_string(dp) + ") * gradient_accumulation_steps (" +
                 std::to_string(ds_gas) + ")");
  }
  if (tr.global_batch_size % (tr.micro_batch_size * dp) != 0) {
    p->Error("training.global_batch_size",
             std::to_string(tr.global_batch_size) + " is not a multiple of micro_batch_size (" +
                 std::to_string(tr.micro_batch_size) + ") * data parallel size (" +
                 std::to_string(dp) + ")");
  }
}

// DeepSpeed's "fp16" / "bf16" blocks: {"enabled", "loss_scale" (0 = dynamic),
// "initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale",
// "consecutive_hysteresis"}, with DeepSpeed's defaults (2^16, 1000, 2, 1, false).
void ParsePrecision(const json& root, ConfigParser* p, TrainerConfig* c) {
  const json* fp16 = p->Section(root, "fp16", kFp16Keys);
  const json* bf16 = p->Section(root, "bf16", kBf16Keys);
  bool fp16_on = false, bf16_on = false;
  p->Bool(fp16, "fp16", "enabled", &fp16_on);
  p->Bool(bf16, "bf16", "enabled", &bf16_on);
  if (fp16_on && bf16_on) p->Error("fp16.enabled", "and bf16.enabled are both true; choose one");
  if (bf16_on) {
    if (c->parallel.precision == "fp16") {
      p->Error("bf16.enabled", "contradicts training.fp16: true; choose one");
    }
    c->parallel.precision = "bf16";
  }
  // The block is checked even when disabled: a typo there is still a typo.
  trainer::LossScalerConfig ls;  // DeepSpeed's defaults, not Megatron's
  double static_scale = 0.0;
  p->Number(fp16, "fp16", "loss_scale", 0.0, false, 1e300, "0 (dynamic) or a positive scale",
            &static_scale);
  if (static_scale > 0) {
    ls.dynamic = false;
    ls.static_scale = static_scale;
  }
  p->Int(fp16, "fp16", "initial_scale_power", 0, "an integer in [0, 64]", &ls.initial_scale_power);
  if (ls.initial_scale_power > 64) {
    p->Error("fp16.initial_scale_power",
             "expected an integer in [0, 64], got " + std::to_string(ls.initial_scale_power));
  }
  p->Int(fp16, "fp16", "loss_scale_window", 1, "a positive integer", &ls.scale_window);
  p->Int(fp16, "fp16", "hysteresis", 1, "a positive integer", &ls.hysteresis);
  p->Number(fp16, "fp16", "min_loss_scale", 0.0, true, 1e300, "a positive number", &ls.min_scale);
  p->Bool(fp16, "fp16", "consecutive_hysteresis", &ls.consecutive_hysteresis);
  if (ls.dynamic && ls.min_scale > std::ldexp(1.0, ls.initial_scale_power)) {
    p->Error("fp16.min_loss_scale",
             "is above the initial scale 2^" + std::to_string(ls.initial_scale_power));
  }
  if (!fp16_on) return;
  if (c->parallel.precision == "bf16" && !bf16_on) {
    p->Error("fp16.enabled", "contradicts training.bf16: true; choose one");
  }
  c->parallel.precision = "fp16";
  c->training.loss_scaler = ls;
}

}  // namespace gpt_rank::train
