// Parsing and validation of the trainer's sections of the job spec (see
// trainer_config.h): Megatron's model/data/training/parallel here, DeepSpeed's blocks
// in deepspeed_config.cc. Runs once per rank at start, and in `gpt-rank plan`.
// Problems are collected, never thrown; the key tables below are what is accepted.
#include "trainer/train/trainer_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/fs.h"
#include "common/job_spec.h"
#include "common/json_file.h"
#include "trainer/data/sft_dataset.h"
#include "trainer/model/gpt_params.h"
#include "trainer/train/config_parser.h"
#include "trainer/train/deepspeed_config.h"

namespace gpt_rank::train {
namespace {

using json = nlohmann::json;
using Parser = ConfigParser;

// ---------------------------------------------------------------------------
// Key tables

const std::vector<std::string> kModelKeys = {
    "num_layers", "hidden_size", "num_attention_heads", "seq_length", "max_position_embeddings",
    "make_vocab_size_divisible_by", "hidden_dropout", "attention_dropout", "init_method_std",
    "checkpoint_activations", "vocab_size", "layernorm_epsilon", "partition_activations",
    "checkpoint_in_cpu",  // Megatron-DeepSpeed's flags
    // The Llama / Qwen2 family (Megatron-LM's names; gpt_config.h)
    "normalization", "norm_epsilon", "swiglu", "position_embedding_type", "rotary_base",
    "group_query_attention", "num_query_groups", "untie_embeddings_and_output_weights",
    "disable_bias_linear", "add_qkv_bias", "ffn_hidden_size"};
const std::vector<std::string> kDataKeys = {
    "data_path",   "train_data",     "vocab_file",      "merge_file",    "cache_dir",
    "json_key",    "skip_bad_lines", "split",           "seed",          "data_impl",
    "lazy_loader", "tokenizer_type", "tokenizer_model", "tokenizer_file", "format",
    // supervised fine-tuning (format "sft")
    "chat_template", "default_system", "max_length", "truncation_strategy", "packing",
    "strict_samples", "split_dataset_ratio"};
const std::vector<std::string> kTrainingKeys = {"micro_batch_size",
                                                "global_batch_size",
                                                "train_iters",
                                                "lr",
                                                "min_lr",
                                                "lr_decay_style",
                                                "lr_warmup_iters",
                                                "lr_warmup_fraction",
                                                "lr_decay_iters",
                                                "weight_decay",
                                                "adam_beta1",
                                                "adam_beta2",
                                                "adam_eps",
                                                "clip_grad",
                                                "log_interval",
                                                "eval_interval",
                                                "eval_iters",
                                                "save",
                                                "save_interval",
                                                "load",
                                                "metrics_file",
                                                "tensorboard_dir",
                                                "tensorboard_log_interval",
                                                "seed",
                                                "threads",
                                                "checkpoint_activations",
                                                "fp16",
                                                "bf16",
                                                "optimizer",
                                                "device",
                                                "loss_scale",
                                                "initial_loss_scale",
                                                "min_loss_scale",
                                                "loss_scale_window",
                                                "hysteresis"};
const std::vector<std::string> kParallelKeys = {
    "tensor_model_parallel_size",
    "pipeline_model_parallel_size",
    "virtual_pipeline_model_parallel_size",
    "num_layers_per_virtual_pipeline_stage",  // Megatron's way of giving the above
    "zero_stage",
    "cpu_optimizer",
    "bucket_cap_mb",
    "overlap_grad_reduce",
    "collective_timeout_s",
    "rendezvous_timeout_s",
    "model_parallel_size"};  // Megatron's older name of tensor_model_parallel_size

// ---------------------------------------------------------------------------
// Sections

// The Llama / Qwen2 family's keys; absent keys keep GPT-2's values.
void ParseModelFamily(const json* m, Parser* p, trainer::GptConfig* g) {
  const std::string s = "model";
  std::string name;
  if (Parser::Find(m, "normalization") != nullptr) {
    p->String(m, s, "normalization", false, &name);
    auto n = trainer::ParseNormalization(name);
    n.ok() ? void(g->normalization = *n) : p->Error("model.normalization", n.status().message());
  }
  if (Parser::Find(m, "position_embedding_type") != nullptr) {
    p->String(m, s, "position_embedding_type", false, &name);
    auto e = trainer::ParsePositionEmbedding(name);
    e.ok() ? void(g->position_embedding_type = *e)
           : p->Error("model.position_embedding_type", e.status().message());
  }
  // Megatron-core's name of layernorm_epsilon (both norms use it).
  if (const json* v = Parser::Find(m, "norm_epsilon"); v != nullptr) {
    const json* old = Parser::Find(m, "layernorm_epsilon");
    if (old != nullptr && *old != *v) {
      p->Error("model.norm_epsilon", Shown(*v) + " disagrees with model.layernorm_epsilon = " +
                                         Shown(*old) + "; keep one of them");
    }
    p->Number(m, s, "norm_epsilon", 0.0, true, 1.0, "a positive number", &g->layernorm_epsilon);
  }
  p->Bool(m, s, "swiglu", &g->swiglu);
  p->Number(m, s, "rotary_base", 0.0, true, 1e12, "a positive number", &g->rotary_base);
  p->Bool(m, s, "group_query_attention", &g->group_query_attention);
  p->Int(m, s, "num_query_groups", 1, "a positive integer", &g->num_query_groups);
  if (Parser::Find(m, "num_query_groups") != nullptr && !g->group_query_attention) {
    p->Error("model.num_query_groups",
             "needs model.group_query_attention: true (Megatron's "
             "--group-query-attention)");
  }
  p->Bool(m, s, "untie_embeddings_and_output_weights", &g->untie_embeddings_and_output_weights);
  bool disable_bias = !g->add_bias_linear;
  p->Bool(m, s, "disable_bias_linear", &disable_bias);
  g->add_bias_linear = !disable_bias;
  p->Bool(m, s, "add_qkv_bias", &g->add_qkv_bias);
  p->Int(m, s, "ffn_hidden_size", 1, "a positive integer", &g->ffn_hidden_size);
}

void ParseModel(const json* m, Parser* p, TrainerConfig* c) {
  trainer::GptConfig& g = c->model;
  const std::string s = "model";
  p->Int(m, s, "num_layers", 1, "a positive integer", &g.num_layers);
  p->Int(m, s, "hidden_size", 1, "a positive integer", &g.hidden_size);
  p->Int(m, s, "num_attention_heads", 1, "a positive integer", &g.num_attention_heads);
  p->Int(m, s, "seq_length", 2, "an integer >= 2", &g.seq_length);
  p->Int(m, s, "max_position_embeddings", 1, "a positive integer", &g.max_position_embeddings);
  p->Int(m, s, "make_vocab_size_divisible_by", 1, "a positive integer",
         &g.make_vocab_size_divisible_by);
  if (Parser::Find(m, "vocab_size") != nullptr) {
    p->Int(m, s, "vocab_size", 2, "an integer >= 2", &g.vocab_size);
    c->vocab_size_given = true;
  }
  p->Number(m, s, "hidden_dropout", 0.0, false, 0.999, "a number in [0, 1)", &g.hidden_dropout);
  p->Number(m, s, "attention_dropout", 0.0, false, 0.999, "a number in [0, 1)",
            &g.attention_dropout);
  p->Number(m, s, "init_method_std", 0.0, true, 1e3, "a positive number", &g.init_method_std);
  p->Number(m, s, "layernorm_epsilon", 0.0, true, 1.0, "a positive number",
            &g.layernorm_epsilon);
  p->Bool(m, s, "checkpoint_activations", &g.checkpoint_activations);
  ParseModelFamily(m, p, &g);
  // Megatron-DeepSpeed's --partition-activations / --checkpoint-in-cpu; merged with
  // DeepSpeed's activation_checkpointing block later.
  p->Bool(m, s, "partition_activations", &c->activation_checkpointing.partition_activations);
  p->Bool(m, s, "checkpoint_in_cpu", &c->activation_checkpointing.cpu_checkpointing);
  if (m != nullptr && g.num_attention_heads > 0 && g.hidden_size % g.num_attention_heads != 0 &&
      Parser::Find(m, "hidden_size") != nullptr) {
    p->Error("model.hidden_size", "must be divisible by model.num_attention_heads (" +
                                      std::to_string(g.hidden_size) + " % " +
                                      std::to_string(g.num_attention_heads) + " != 0)");
  }
  if (g.seq_length > g.max_position_embeddings) {
    p->Error("model.seq_length", std::to_string(g.seq_length) +
                                     " is larger than model.max_position_embeddings (" +
                                     std::to_string(g.max_position_embeddings) + ")");
  }
}

// The supervised fine-tuning keys of the data section (format "sft").
void ParseSft(const json* d, Parser* p, TrainerConfig* c) {
  SftConfig& sft = c->data.sft;
  const std::string s = "data";
  p->String(d, s, "format", false, &c->data.format);
  const bool is_sft = c->data.format == "sft";
  if (!is_sft && c->data.format != "pretrain") {
    p->Error("data.format", "expected \"pretrain\" or \"sft\", got \"" + c->data.format + "\"");
  }
  for (const char* key : {"chat_template", "default_system", "max_length", "truncation_strategy",
                          "packing", "strict_samples", "split_dataset_ratio"}) {
    if (!is_sft && Parser::Find(d, key) != nullptr) {
      p->Error(std::string("data.") + key, "only for data.format \"sft\"");
    }
  }
  if (!is_sft) return;
  p->String(d, s, "chat_template", false, &sft.chat_template);
  if (const json* v = Parser::Find(d, "default_system"); v != nullptr) {
    if (v->is_string()) {
      sft.default_system = v->get<std::string>();
    } else {
      p->Error("data.default_system", "expected a string (\"\" for none), got " + Shown(*v));
    }
  }
  p->Int(d, s, "max_length", 2, "an integer >= 2", &sft.max_length);
  p->String(d, s, "truncation_strategy", false, &sft.truncation_strategy);
  if (auto t = trainer::data::ParseTruncation(sft.truncation_strategy); !t.ok()) {
    p->Error("data.truncation_strategy", t.status().message());
  }
  p->Bool(d, s, "packing", &sft.packing);
  p->Bool(d, s, "strict_samples", &sft.strict_samples);
  p->Number(d, s, "split_dataset_ratio", 0.0, false, 0.5, "a number in [0, 0.5]",
            &sft.split_dataset_ratio);
  const int64_t row = c->model.seq_length + 1;
  if (sft.max_length == 0) sft.max_length = row;
  if (sft.max_length > row) {
    p->Error("data.max_length", std::to_string(sft.max_length) +
                                    " is longer than a row holds: model.seq_length + 1 = " +
                                    std::to_string(row) + " (a sample of n tokens fills n - 1 "
                                    "positions)");
  }
  if (c->data.train_data.empty()) {
    p->Error("data.train_data", "data.format \"sft\" reads a JSONL chat dataset from "
                                "data.train_data (data.data_path is for pretraining)");
  }
  if (sft.packing && !c->model.rope()) {
    p->Error("data.packing", "packing restarts each sample's positions, which needs "
                             "model.position_embedding_type \"rope\" (learned positions "
                             "are 0..T-1 per row)");
  }
}

void ParseData(const json* d, Parser* p, TrainerConfig* c) {
  DataConfig& data = c->data;
  const std::string s = "data";
  p->String(d, s, "data_path", true, &data.data_path);
  p->String(d, s, "train_data", true, &data.train_data);
  p->String(d, s, "vocab_file", true, &data.vocab_file);
  p->String(d, s, "merge_file", true, &data.merge_file);
  p->String(d, s, "tokenizer_type", false, &data.tokenizer_type);
  p->String(d, s, "tokenizer_model", true, &data.tokenizer_model);
  p->String(d, s, "tokenizer_file", true, &data.tokenizer_file);
  p->String(d, s, "cache_dir", true, &data.cache_dir);
  p->String(d, s, "json_key", false, &data.json_key);
  p->Bool(d, s, "skip_bad_lines", &data.skip_bad_lines);
  if (const json* split = Parser::Find(d, "split"); split != nullptr && !split->is_string()) {
    p->Error("data.split", "expected a string like \"949,50,1\", got " + Shown(*split));
  } else {
    p->String(d, s, "split", false, &data.split);
  }
  p->Int(d, s, "seed", 0, "a non-negative 32-bit integer", &data.seed);
  if (const json* impl = Parser::Find(d, "data_impl");
      impl != nullptr && *impl != "mmap" && *impl != "infer") {
    p->Error("data.data_impl", "only \"mmap\" (MMIDIDX) is supported, got " + Shown(*impl));
  }
  if (data.data_path.empty() == data.train_data.empty()) {
    p->Error("data", data.data_path.empty()
                         ? "give data.data_path (an indexed dataset prefix) or data.train_data "
                           "(loose JSON, one {\"text\": ...} per line)"
                         : "give data.data_path or data.train_data, not both");
  }
  const bool hf_tokenizer = !data.tokenizer_model.empty() || !data.tokenizer_file.empty();
  if (!data.tokenizer_model.empty() && !data.tokenizer_file.empty()) {
    p->Error("data.tokenizer_file",
             "give data.tokenizer_file or data.tokenizer_model (Megatron's name), not both");
  } else if (!hf_tokenizer &&
             (data.tokenizer_type.empty() || data.tokenizer_type == "GPT2BPETokenizer")) {
    const char* or_hf = "; or data.tokenizer_file for a Hugging Face tokenizer.json)";
    if (data.vocab_file.empty() && Parser::Find(d, "vocab_file") == nullptr) {
      p->Error("data.vocab_file", std::string("required (GPT-2 vocab.json") + or_hf);
    }
    if (data.merge_file.empty() && Parser::Find(d, "merge_file") == nullptr) {
      p->Error("data.merge_file", std::string("required (GPT-2 merges.txt") + or_hf);
    }
  } else if (auto type = trainer::data::ResolveTokenizerType(TokenizerSpecOf(data)); !type.ok()) {
    p->Error("data", type.status().message());
  }
  if (data.cache_dir.empty()) {
    data.cache_dir = ExpandEnv("${COORD_DATA_DIR:-${HOME}/.cache/coord}/preprocessed");
  }
}

void ParseLrAndAdam(const json* t, Parser* p, TrainingConfig* tr) {
  const std::string s = "training";
  trainer::LrScheduleConfig& lr = tr->lr;
  p->Number(t, s, "lr", 0.0, true, 1e300, "a positive number", &lr.lr);
  p->Number(t, s, "min_lr", 0.0, false, 1e300, "a non-negative number", &lr.min_lr);
  if (const json* style = Parser::Find(t, "lr_decay_style"); style != nullptr) {
    auto parsed = style->is_string() ? trainer::ParseLrDecayStyle(style->get<std::string>())
                                     : coord::StatusOr<trainer::LrDecayStyle>(
                                           coord::InvalidArgument("not a string"));
    if (parsed.ok()) {
      lr.decay_style = *parsed;
    } else {
      p->Error("training.lr_decay_style",
               "expected \"constant\", \"linear\" or \"cosine\", got " + Shown(*style));
    }
  }
  p->Int(t, s, "lr_warmup_iters", 0, "a non-negative integer", &lr.lr_warmup_iters);
  p->Number(t, s, "lr_warmup_fraction", 0.0, false, 1.0, "a number in [0, 1]",
            &lr.lr_warmup_fraction);
  p->Int(t, s, "lr_decay_iters", 1, "a positive integer", &lr.lr_decay_iters);
  if (lr.min_lr > lr.lr) p->Error("training.min_lr", "larger than training.lr");
  trainer::AdamWConfig& a = tr->adam;
  p->Number(t, s, "weight_decay", 0.0, false, 1e6, "a non-negative number", &a.weight_decay);
  p->Number(t, s, "adam_beta1", 0.0, false, 0.9999999, "a number in [0, 1)", &a.beta1);
  p->Number(t, s, "adam_beta2", 0.0, false, 0.9999999, "a number in [0, 1)", &a.beta2);
  p->Number(t, s, "adam_eps", 0.0, true, 1.0, "a positive number", &a.eps);
  if (const json* opt = Parser::Find(t, "optimizer");
      opt != nullptr && *opt != "adam" && *opt != "adamw") {
    p->Error("training.optimizer", "only \"adam\" (AdamW) is supported, got " + Shown(*opt));
  }
}

void ParseTraining(const json* t, Parser* p, TrainerConfig* c) {
  TrainingConfig& tr = c->training;
  const std::string s = "training";
  p->Int(t, s, "micro_batch_size", 1, "a positive integer", &tr.micro_batch_size);
  p->Int(t, s, "global_batch_size", 1, "a positive integer", &tr.global_batch_size);
  p->Int(t, s, "train_iters", 1, "a positive integer", &tr.train_iters);
  if (Parser::Find(t, "train_iters") == nullptr) {
    p->Error("training.train_iters", "required (the number of iterations to train)");
  }
  ParseLrAndAdam(t, p, &tr);
  p->Number(t, s, "clip_grad", 0.0, false, 1e300, "a non-negative number (0: no clipping)",
            &tr.clip_grad);
  p->Int(t, s, "log_interval", 1, "a positive integer", &tr.log_interval);
  p->Int(t, s, "eval_interval", 1, "a positive integer", &tr.eval_interval);
  p->Int(t, s, "eval_iters", 0, "a non-negative integer (0: no evaluation)", &tr.eval_iters);
  p->String(t, s, "save", true, &tr.save);
  p->Int(t, s, "save_interval", 0, "a non-negative integer (0: save at the end only)",
         &tr.save_interval);
  p->String(t, s, "load", true, &tr.load);
  p->String(t, s, "metrics_file", true, &tr.metrics_file);
  p->Int(t, s, "seed", 0, "a non-negative integer", &tr.seed);
  p->Int(t, s, "threads", 0, "a non-negative integer (0: OMP_NUM_THREADS or all cores)",
         &tr.threads);
  p->Bool(t, s, "checkpoint_activations", &c->model.checkpoint_activations);
  p->String(t, s, "device", false, &tr.device);
  if (tr.device != "cpu" && tr.device != "cuda") {
    p->Error("training.device", "expected \"cpu\" or \"cuda\", got \"" + tr.device + "\"");
  }
  // Megatron's --fp16 / --bf16 and its loss-scale flags (DeepSpeed's "fp16" block,
  // ParsePrecision, says the same in its own words).
  bool fp16 = false, bf16 = false;
  p->Bool(t, s, "fp16", &fp16);
  p->Bool(t, s, "bf16", &bf16);
  if (fp16 && bf16) p->Error("training", "fp16 and bf16 are both true; choose one");
  if (fp16) c->parallel.precision = "fp16";
  if (bf16) c->parallel.precision = "bf16";
  trainer::LossScalerConfig& ls = tr.loss_scaler;
  ls.initial_scale_power = 32;  // Megatron's --initial-loss-scale default, 2^32
  double static_scale = 0.0, initial = 0.0;
  p->Number(t, s, "loss_scale", 0.0, false, 1e300, "0 (dynamic) or a positive scale",
            &static_scale);
  p->Number(t, s, "initial_loss_scale", 1.0, false, 1e300, "a power of two >= 1", &initial);
  if (initial > 0) {
    const int power = static_cast<int>(std::lround(std::log2(initial)));
    if (std::ldexp(1.0, power) != initial) {
      p->Error("training.initial_loss_scale",
               "expected a power of two, got " + std::to_string(initial));
    }
    ls.initial_scale_power = power;
  }
  if (static_scale > 0) {
    ls.dynamic = false;
    ls.static_scale = static_scale;
  }
  p->Number(t, s, "min_loss_scale", 0.0, true, 1e300, "a positive number", &ls.min_scale);
  p->Int(t, s, "loss_scale_window", 1, "a positive integer", &ls.scale_window);
  p->Int(t, s, "hysteresis", 1, "a positive integer", &ls.hysteresis);
  if (tr.metrics_file.empty() && !tr.save.empty()) {
    tr.metrics_file = coord::JoinPath(tr.save, "metrics.jsonl");
  }
  // Inside save, beside metrics.jsonl: a folder beside save itself would be shared by
  // every job saving under the same parent (runs/<job>).
  p->String(t, s, "tensorboard_dir", true, &tr.tensorboard_dir);
  if (Parser::Find(t, "tensorboard_dir") == nullptr && !tr.save.empty()) {
    tr.tensorboard_dir = coord::JoinPath(tr.save, "tensorboard");
  }
  p->Int(t, s, "tensorboard_log_interval", 1, "a positive integer", &tr.tensorboard_log_interval);
}

// Megatron's two spellings of the interleaved schedule's model chunks per stage:
// virtual_pipeline_model_parallel_size directly, or num_layers_per_virtual_pipeline_stage
// (arguments.py: vpp = (num_layers / pp) / num_layers_per_virtual_pipeline_stage).
void ParseVirtualPipeline(const json* par, Parser* p, TrainerConfig* c) {
  ParallelConfig& pc = c->parallel;
  const std::string s = "parallel";
  const bool vpp_given = Parser::Find(par, "virtual_pipeline_model_parallel_size") != nullptr;
  p->Int(par, s, "virtual_pipeline_model_parallel_size", 1,
         "a positive integer (1: no interleaving)", &pc.virtual_pipeline_model_parallel_size);
  if (Parser::Find(par, "num_layers_per_virtual_pipeline_stage") == nullptr) return;
  int per_chunk = 0;
  p->Int(par, s, "num_layers_per_virtual_pipeline_stage", 1, "a positive integer", &per_chunk);
  const int L = c->model.num_layers, pp = pc.pipeline_model_parallel_size;
  if (per_chunk <= 0 || pp <= 0 || L % pp != 0) return;  // CheckPipeline names L % pp
  const int per_stage = L / pp;
  if (per_stage % per_chunk != 0) {
    p->Error("parallel.num_layers_per_virtual_pipeline_stage",
             std::to_string(per_chunk) + " does not divide the " + std::to_string(per_stage) +
                 " layers of a pipeline stage (model.num_layers " + std::to_string(L) +
                 " / pipeline_model_parallel_size " + std::to_string(pp) +
                 "): each model chunk holds the same number of layers; choose a divisor of " +
                 std::to_string(per_stage));
    return;
  }
  const int derived = per_stage / per_chunk;
  if (vpp_given && derived != pc.virtual_pipeline_model_parallel_size) {
    p->Error("parallel.num_layers_per_virtual_pipeline_stage",
             std::to_string(per_chunk) + " gives " + std::to_string(derived) +
                 " model chunks per stage ((" + std::to_string(L) + " / " + std::to_string(pp) +
                 ") / " + std::to_string(per_chunk) +
                 "), but parallel.virtual_pipeline_model_parallel_size = " +
                 std::to_string(pc.virtual_pipeline_model_parallel_size) + "; keep one of them");
    return;
  }
  pc.virtual_pipeline_model_parallel_size = derived;
}

void ParseParallel(const json* par, Parser* p, TrainerConfig* c) {
  ParallelConfig& pc = c->parallel;
  const std::string s = "parallel";
  p->Int(par, s, "tensor_model_parallel_size", 1, "a positive integer",
         &pc.tensor_model_parallel_size);
  if (Parser::Find(par, "model_parallel_size") != nullptr) {  // Megatron's older name
    int mp = 0;
    p->Int(par, s, "model_parallel_size", 1, "a positive integer", &mp);
    if (Parser::Find(par, "tensor_model_parallel_size") != nullptr && mp > 0 &&
        mp != pc.tensor_model_parallel_size) {
      p->Error("parallel.model_parallel_size",
               std::to_string(mp) + " disagrees with parallel.tensor_model_parallel_size = " +
                   std::to_string(pc.tensor_model_parallel_size) + "; keep one of them");
    }
    if (mp > 0) pc.tensor_model_parallel_size = mp;
  }
  p->Int(par, s, "pipeline_model_parallel_size", 1, "a positive integer",
         &pc.pipeline_model_parallel_size);
  ParseVirtualPipeline(par, p, c);
  p->Int(par, s, "zero_stage", 0, "0, 1, 2 or 3", &pc.zero_stage);
  if (pc.zero_stage > 3) {
    p->Error("parallel.zero_stage", "expected 0, 1, 2 or 3, got " + std::to_string(pc.zero_stage));
    pc.zero_stage = 0;
  }
  p->Bool(par, s, "cpu_optimizer", &pc.cpu_optimizer);
  p->Number(par, s, "bucket_cap_mb", 0.0, true, 1e6, "a positive number of MiB", &pc.bucket_cap_mb);
  p->Bool(par, s, "overlap_grad_reduce", &pc.overlap_grad_reduce);
  p->Number(par, s, "collective_timeout_s", 0.0, true, 1e7, "a positive number of seconds",
            &pc.collective_timeout_s);
  p->Number(par, s, "rendezvous_timeout_s", 0.0, true, 1e7, "a positive number of seconds",
            &pc.rendezvous_timeout_s);
  c->model.tensor_model_parallel_size = pc.tensor_model_parallel_size;
}

// The rank grid: TP innermost on consecutive ranks, then DP, then PP (Megatron's
// order), so a TP group is inside one node exactly when it divides the node's ranks.
void CheckLayout(Parser* p, TrainerConfig* c) {
  const ParallelConfig& pc = c->parallel;
  const int tp = pc.tensor_model_parallel_size, pp = pc.pipeline_model_parallel_size;
  const std::string tps = std::to_string(tp);
  if (tp > 0 && c->model.num_attention_heads % tp != 0) {
    p->Error("parallel.tensor_model_parallel_size",
             tps + " does not divide model.num_attention_heads (" +
                 std::to_string(c->model.num_attention_heads) +
                 "): each TP rank owns whole heads; choose a divisor of the heads");
  } else if (tp > 0 && c->model.group_query_attention && c->model.num_query_groups > 0 &&
             c->model.num_query_groups % tp != 0) {
    p->Error("parallel.tensor_model_parallel_size",
             tps + " does not divide model.num_query_groups (" +
                 std::to_string(c->model.num_query_groups) +
                 "): each TP rank owns whole KV groups (Megatron's rule); choose a divisor of "
                 "the query groups");
  } else if (tp > 0 && c->model.ffn_size() % tp != 0) {
    p->Error("parallel.tensor_model_parallel_size",
             tps + " does not divide the MLP's inner size (model.ffn_hidden_size " +
                 std::to_string(c->model.ffn_size()) + ")");
  }
  if (tp > 0 && pp > 0 && pc.world_size % (tp * pp) != 0) {
    p->Error("parallel.tensor_model_parallel_size",
             "world size " + std::to_string(pc.world_size) + " is not a multiple of tensor (" +
                 tps + ") x pipeline (" + std::to_string(pp) +
                 ") parallel; start a multiple of " + std::to_string(tp * pp) +
                 " ranks or change the sizes");
  }
  const int local = pc.local_world_size;
  if (tp > 1 && local > 0) {
    if (tp <= local && local % tp != 0) {
      p->Error("parallel.tensor_model_parallel_size",
               tps + " does not divide the " + std::to_string(local) +
                   " ranks of a node (LOCAL_WORLD_SIZE): a TP group would straddle two nodes "
                   "unevenly; choose a divisor of " + std::to_string(local));
    } else if (tp > local && tp % local != 0) {
      p->Error("parallel.tensor_model_parallel_size",
               tps + " is not a multiple of the " + std::to_string(local) +
                   " ranks of a node (LOCAL_WORLD_SIZE); choose a divisor or a multiple");
    } else if (tp > local) {
      p->Warn("parallel.tensor_model_parallel_size",
              tps + " is larger than the " + std::to_string(local) +
                  " ranks of a node: each TP group spans " + std::to_string(tp / local) +
                  " nodes, so its 4 all-reduces per layer cross the network between nodes "
                  "instead of NVLink (the slow link); prefer tensor_model_parallel_size <= " +
                  std::to_string(local));
    }
  }
  // DeepSpeed's PipelineEngine refuses ZeRO-2 and -3: both partition gradients, which
  // each micro-batch's backward would reduce-scatter while the pipeline still
  // accumulates them; ZeRO-1 partitions only the optimizer state, used once per step.
  if (pc.zero_stage >= 2 && pp > 1) {
    const std::string stage = std::to_string(pc.zero_stage);
    p->Error("zero_optimization.stage",
             stage +
                 " cannot be combined with pipeline parallel "
                 "(parallel.pipeline_model_parallel_size = " +
                 std::to_string(pp) +
                 "), as in DeepSpeed; use stage 1 with pipeline parallel, or "
                 "pipeline_model_parallel_size 1 with stage " +
                 stage);
  }
}

// Pipeline stages: whole layers per stage (and per model chunk when interleaved), and
// enough micro-batches per iteration for the schedule. Runs after the batch keys.
void CheckPipeline(Parser* p, TrainerConfig* c) {
  const ParallelConfig& pc = c->parallel;
  const int pp = pc.pipeline_model_parallel_size, vpp = pc.virtual_pipeline_model_parallel_size;
  const int L = c->model.num_layers;
  const std::string pps = std::to_string(pp), Ls = std::to_string(L);
  if (vpp > 1 && pp == 1) {
    p->Error("parallel.virtual_pipeline_model_parallel_size",
             std::to_string(vpp) +
                 " needs pipeline parallel: the interleaved schedule splits "
                 "each pipeline stage into model chunks, and parallel.pipeline_model_parallel_size "
                 "is 1; set it to 2 or more, or virtual_pipeline_model_parallel_size to 1");
    return;
  }
  if (pp <= 1 || vpp < 1) return;
  if (L % pp != 0) {
    p->Error("parallel.pipeline_model_parallel_size",
             pps + " does not divide model.num_layers (" + Ls +
                 "): every stage holds the same number of whole layers (Megatron's split); "
                 "choose a divisor of " +
                 Ls);
    return;
  }
  if (vpp > 1 && L % (pp * vpp) != 0) {
    p->Error("parallel.virtual_pipeline_model_parallel_size",
             "model.num_layers (" + Ls + ") is not a multiple of pipeline (" + pps +
                 ") x virtual pipeline (" + std::to_string(vpp) +
                 ") stages: each model chunk holds L / (pp x vpp) whole layers; choose sizes "
                 "whose product divides " +
                 Ls);
    return;
  }
  const int64_t m = c->num_micro_batches();
  const std::string ms = std::to_string(m);
  const std::string batch = "(global_batch_size " + std::to_string(c->training.global_batch_size) +
                            " / (micro_batch_size " + std::to_string(c->training.micro_batch_size) +
                            " x data parallel " + std::to_string(pc.data_parallel_size()) + "))";
  if (m < pp) {
    p->Error("training.global_batch_size",
             ms + " micro-batch" + (m == 1 ? "" : "es") + " per iteration " + batch +
                 " cannot fill " + pps +
                 " pipeline stages: Megatron's 1F1B schedule needs a "
                 "micro-batch in flight on every stage to fill the pipeline, and with fewer the "
                 "stages idle at least as long as they compute (bubble (pp-1)/m = " +
                 std::to_string(pp - 1) + "/" + ms + "); raise global_batch_size to at least " +
                 std::to_string(pp * c->training.micro_batch_size * pc.data_parallel_size()) +
                 " or lower micro_batch_size");
  } else if (vpp > 1 && m % pp != 0) {
    p->Error("training.global_batch_size",
             ms + " micro-batches per iteration " + batch + " is not a multiple of the " + pps +
                 " pipeline stages, which the interleaved schedule needs: it sends micro-batches "
                 "through each model chunk in groups of pp (Megatron's get_model_chunk_id), so a "
                 "partial group would leave a chunk without its micro-batches; use a multiple of " +
                 pps + " micro-batches, or virtual_pipeline_model_parallel_size 1");
  }
}

}  // namespace

// ---------------------------------------------------------------------------

void ConfigParser::String(const json* sec, const std::string& sec_name, const char* key,
                          bool expand, std::string* out) {
  const json* v = Find(sec, key);
  if (v == nullptr) return;
  if (!v->is_string()) {
    Error(Where(sec_name, key), "expected a string, got " + Shown(*v));
    return;
  }
  *out = expand ? ExpandEnv(v->get<std::string>()) : v->get<std::string>();
}

std::string ExpandEnv(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    // Find the matching '}' (defaults may nest ${...}).
    size_t depth = 0, j = i;
    for (; j < text.size(); ++j) {
      if (text.compare(j, 2, "${") == 0) ++depth, ++j;
      else if (text[j] == '}' && --depth == 0) break;
    }
    if (j >= text.size()) {  // unterminated: keep as written
      out += text.substr(i);
      break;
    }
    const std::string inner = text.substr(i + 2, j - i - 2);
    const size_t sep = inner.find(":-");
    const std::string name = inner.substr(0, sep);
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (sep != std::string::npos) {
      out += ExpandEnv(inner.substr(sep + 2));
    }
    i = j + 1;
  }
  return out;
}

coord::Status ApplyOverride(const std::string& assignment, json* job) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return coord::InvalidArgument("--set " + assignment + ": expected KEY=VALUE, e.g. " +
                                  "training.train_iters=20");
  }
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  // The shared parser, as for the file: its nesting bound keeps the checks' dump() of a
  // value from recursing 100000 levels deep. Not JSON (or past the bound): a string.
  coord::StatusOr<json> parsed = coord::ParseJson(text, "--set " + key);
  json value = parsed.ok() ? std::move(*parsed) : json(text);
  json* node = job;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
    if (part.empty()) return coord::InvalidArgument("--set " + assignment + ": empty key part");
    if (!node->is_object()) {
      return coord::InvalidArgument("--set " + assignment + ": " + key.substr(0, start - 1) +
                                    " is not an object");
    }
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return coord::Status::Ok();
    }
    node = &(*node)[part];
    if (node->is_null()) *node = json::object();
    start = dot + 1;
  }
}

coord::StatusOr<int> WorldSizeFromEnv() {
  const char* ws = std::getenv("WORLD_SIZE");
  if (ws == nullptr || *ws == '\0') return 1;
  char* end = nullptr;
  const long v = std::strtol(ws, &end, 10);
  if (*end != '\0' || v < 1 || v > 1000000) {
    return coord::InvalidArgument(std::string("WORLD_SIZE: expected a positive integer, got \"") +
                                  ws + "\"");
  }
  return static_cast<int>(v);
}

coord::StatusOr<TrainerConfigResult> ParseTrainerConfig(const std::string& json_text,
                                                        const std::string& path,
                                                        const std::vector<std::string>& overrides,
                                                        int world_size, int local_world_size) {
  ASSIGN_OR_RETURN(json root, coord::ParseJson(json_text, path));
  if (!root.is_object()) return coord::InvalidArgument(path + ": expected a JSON object");
  for (const std::string& o : overrides) RETURN_IF_ERROR(ApplyOverride(o, &root));

  Parser p(path);
  TrainerConfigResult result;
  TrainerConfig& c = result.config;
  c.source_path = path;
  c.parallel.world_size = world_size;
  c.parallel.local_world_size = local_world_size;
  ParseModel(p.Section(root, "model", kModelKeys), &p, &c);
  ParseData(p.Section(root, "data", kDataKeys), &p, &c);
  ParseSft(Parser::Find(&root, "data"), &p, &c);
  ParseTraining(p.Section(root, "training", kTrainingKeys), &p, &c);
  ParseParallel(p.Section(root, "parallel", kParallelKeys), &p, &c);
  ParseZeroOptimization(root, &p, &c);
  ParseActivationCheckpointing(root, &p, &c);
  CheckLayout(&p, &c);
  ParseDeepSpeedBatch(root, &p, &c);
  CheckPipeline(&p, &c);
  ParsePrecision(root, &p, &c);
  TrainingConfig& tr = c.training;
  tr.lr.train_iters = tr.train_iters;
  tr.lr.global_batch_size = tr.global_batch_size;
  if (p.errors().empty()) {
    auto schedule = trainer::LrSchedule::Create(tr.lr);
    if (!schedule.ok()) p.Error("training", schedule.status().message());
  }
  if (!tr.load.empty() && !tr.save.empty() && tr.load != tr.save) {
    p.Warn("training.load", "differs from training.save; new checkpoints go to training.save");
  }
  if (p.errors().empty()) {
    if (coord::Status s = trainer::ValidateGptConfig(c.model); !s.ok()) {
      p.Error("model", s.message());
    }
  }
  if (!p.errors().empty()) {
    std::string all;
    for (const std::string& e : p.errors()) all += (all.empty() ? "" : "\n") + e;
    return coord::InvalidArgument(all);
  }
  // The stored job (saved with checkpoints, read by generate) has the paths resolved.
  auto resolved = [&root](const char* section, const char* key, const std::string& value) {
    auto sec = root.find(section);
    if (sec != root.end() && sec->is_object() && sec->contains(key)) (*sec)[key] = value;
  };
  resolved("data", "data_path", c.data.data_path);
  resolved("data", "train_data", c.data.train_data);
  resolved("data", "vocab_file", c.data.vocab_file);
  resolved("data", "merge_file", c.data.merge_file);
  resolved("data", "tokenizer_model", c.data.tokenizer_model);
  resolved("data", "tokenizer_file", c.data.tokenizer_file);
  resolved("data", "cache_dir", c.data.cache_dir);
  resolved("training", "save", tr.save);
  resolved("training", "load", tr.load);
  resolved("training", "metrics_file", tr.metrics_file);
  resolved("training", "tensorboard_dir", tr.tensorboard_dir);
  c.job = std::move(root);
  result.warnings = std::move(p.warnings());
  return result;
}

coord::StatusOr<TrainerConfigResult> LoadTrainerConfig(const std::string& path,
                                                       const std::vector<std::string>& overrides,
                                                       int world_size, int local_world_size) {
  auto text = coord::ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseTrainerConfig(*text, path, overrides, world_size, local_world_size);
}

coord::Status CheckTrainable(const TrainerConfig& config) {
  // Tensor, pipeline parallel and ZeRO are the trainer's to refuse where it builds the
  // model. The CUDA backend knows the GPT-2 architecture only (gpt_cuda.h).
  if (config.training.device == "cuda" && !config.model.is_gpt2()) {
    return coord::FailedPrecondition(
        "training.device \"cuda\" runs the GPT-2 architecture only: the Llama/Qwen2 options "
        "of the model section (normalization RMSNorm, position_embedding_type rope, swiglu, "
        "group_query_attention, untie_embeddings_and_output_weights, disable_bias_linear, "
        "ffn_hidden_size other than 4 x hidden_size) run on training.device \"cpu\"");
  }
  if (config.training.device == "cuda" && config.data.format == "sft") {
    return coord::FailedPrecondition(
        "data.format \"sft\" (loss masks, position ids, packed segments) runs on "
        "training.device \"cpu\" only for now");
  }
  return coord::Status::Ok();
}

}  // namespace gpt_rank::train
