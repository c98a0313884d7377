// Parsing and validation of the trainer's sections of the job spec (see
// trainer_config.h). Runs once per rank at start, and in `gpt-rank plan`. Problems
// are collected, never thrown; the key tables below are the list of what is accepted.
#include "trainer/train/trainer_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/fs.h"
#include "common/job_spec.h"
#include "common/json_file.h"
#include "trainer/model/gpt_params.h"

namespace gpt_rank::train {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxShown = 60;

// ---------------------------------------------------------------------------
// Key tables

const std::vector<std::string> kModelKeys = {
    "num_layers",         "hidden_size",       "num_attention_heads",
    "seq_length",         "max_position_embeddings", "make_vocab_size_divisible_by",
    "hidden_dropout",     "attention_dropout", "init_method_std",
    "checkpoint_activations", "vocab_size",    "layernorm_epsilon"};
const std::vector<std::string> kDataKeys = {
    "data_path", "train_data",     "vocab_file", "merge_file", "cache_dir",   "json_key",
    "skip_bad_lines", "split",     "seed",       "data_impl",  "lazy_loader", "tokenizer_type"};
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
// DeepSpeed's "fp16" and "bf16" blocks.
const std::vector<std::string> kFp16Keys = {
    "enabled",    "loss_scale",     "initial_scale_power",    "loss_scale_window",
    "hysteresis", "min_loss_scale", "consecutive_hysteresis", "auto_cast"};
const std::vector<std::string> kBf16Keys = {"enabled"};
const std::vector<std::string> kParallelKeys = {
    "tensor_model_parallel_size", "pipeline_model_parallel_size", "zero_stage",
    "cpu_optimizer",              "bucket_cap_mb",                "overlap_grad_reduce",
    "collective_timeout_s",       "rendezvous_timeout_s"};

std::string Shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() <= kMaxShown ? s : s.substr(0, kMaxShown) + "...";
}

// ---------------------------------------------------------------------------
// Collecting problems

class Parser {
 public:
  explicit Parser(std::string path) : path_(std::move(path)) {}

  void Error(const std::string& where, const std::string& what) {
    errors_.push_back(path_ + ": " + where + ": " + what);
  }
  void Warn(const std::string& where, const std::string& what) {
    warnings_.push_back(path_ + ": " + where + ": " + what);
  }

  // The object at root[name] (null json when absent), warning on unknown keys.
  const json* Section(const json& root, const std::string& name,
                      const std::vector<std::string>& keys) {
    auto it = root.find(name);
    if (it == root.end()) return nullptr;
    if (!it->is_object()) {
      Error(name, "expected an object, got " + Shown(*it));
      return nullptr;
    }
    for (auto k = it->begin(); k != it->end(); ++k) {
      if (std::find(keys.begin(), keys.end(), k.key()) != keys.end()) continue;
      std::string guess = coord::DidYouMean(k.key(), keys);
      Warn(name + "." + k.key(),
           guess.empty() ? "unknown key" : "unknown key; did you mean " + guess + "?");
    }
    return &*it;
  }

  // An integer >= min (floats and strings refused, never truncated).
  template <typename T>
  void Int(const json* sec, const std::string& sec_name, const char* key, int64_t min,
           const std::string& expected, T* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    const std::string where = Where(sec_name, key);
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() &&
         v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      std::string msg = "expected " + expected + ", got " + Shown(*v);
      if (v->is_number_float() && std::isfinite(v->get<double>()) &&
          v->get<double>() == std::floor(v->get<double>()) && std::fabs(v->get<double>()) < 1e15) {
        msg += "; write " + std::to_string(static_cast<long long>(v->get<double>()));
      }
      Error(where, msg);
      return;
    }
    const int64_t value = v->get<int64_t>();
    if (value < min || value < 0 ||
        static_cast<uint64_t>(value) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    *out = static_cast<T>(value);
  }

  // A finite number in [min, max] (open at min when min_exclusive).
  template <typename T>
  void Number(const json* sec, const std::string& sec_name, const char* key, double min,
              bool min_exclusive, double max, const std::string& expected, T* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    const std::string where = Where(sec_name, key);
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    const double d = v->get<double>();
    if (d < min || (min_exclusive && d == min) || d > max) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    *out = static_cast<T>(d);
  }

  void String(const json* sec, const std::string& sec_name, const char* key, bool expand,
              std::string* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    if (!v->is_string()) {
      Error(Where(sec_name, key), "expected a string, got " + Shown(*v));
      return;
    }
    *out = expand ? ExpandEnv(v->get<std::string>()) : v->get<std::string>();
  }

  void Bool(const json* sec, const std::string& sec_name, const char* key, bool* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    if (!v->is_boolean()) {
      Error(Where(sec_name, key), "expected true or false, got " + Shown(*v));
      return;
    }
    *out = v->get<bool>();
  }

  static std::string Where(const std::string& sec_name, const char* key) {
    return sec_name.empty() ? std::string(key) : sec_name + "." + key;
  }

  static const json* Find(const json* sec, const char* key) {
    if (sec == nullptr) return nullptr;
    auto it = sec->find(key);
    return it == sec->end() ? nullptr : &*it;
  }

  const std::string& path() const { return path_; }
  std::vector<std::string>& errors() { return errors_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::string path_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

// ---------------------------------------------------------------------------
// Sections

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

void ParseData(const json* d, Parser* p, TrainerConfig* c) {
  DataConfig& data = c->data;
  const std::string s = "data";
  p->String(d, s, "data_path", true, &data.data_path);
  p->String(d, s, "train_data", true, &data.train_data);
  p->String(d, s, "vocab_file", true, &data.vocab_file);
  p->String(d, s, "merge_file", true, &data.merge_file);
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
  if (data.vocab_file.empty() && Parser::Find(d, "vocab_file") == nullptr) {
    p->Error("data.vocab_file", "required (GPT-2 vocab.json)");
  }
  if (data.merge_file.empty() && Parser::Find(d, "merge_file") == nullptr) {
    p->Error("data.merge_file", "required (GPT-2 merges.txt)");
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
}

void ParseParallel(const json* par, Parser* p, TrainerConfig* c) {
  ParallelConfig& pc = c->parallel;
  const std::string s = "parallel";
  p->Int(par, s, "tensor_model_parallel_size", 1, "a positive integer",
         &pc.tensor_model_parallel_size);
  p->Int(par, s, "pipeline_model_parallel_size", 1, "a positive integer",
         &pc.pipeline_model_parallel_size);
  p->Int(par, s, "zero_stage", 0, "0, 1, 2 or 3", &pc.zero_stage);
  if (pc.zero_stage > 3) p->Error("parallel.zero_stage", "expected 0, 1, 2 or 3");
  p->Bool(par, s, "cpu_optimizer", &pc.cpu_optimizer);
  p->Number(par, s, "bucket_cap_mb", 0.0, true, 1e6, "a positive number of MiB", &pc.bucket_cap_mb);
  p->Bool(par, s, "overlap_grad_reduce", &pc.overlap_grad_reduce);
  p->Number(par, s, "collective_timeout_s", 0.0, true, 1e7, "a positive number of seconds",
            &pc.collective_timeout_s);
  p->Number(par, s, "rendezvous_timeout_s", 0.0, true, 1e7, "a positive number of seconds",
            &pc.rendezvous_timeout_s);
  c->model.tensor_model_parallel_size = pc.tensor_model_parallel_size;
  if (pc.tensor_model_parallel_size > 0 &&
      c->model.num_attention_heads % pc.tensor_model_parallel_size != 0) {
    p->Error("parallel.tensor_model_parallel_size",
             "model.num_attention_heads (" + std::to_string(c->model.num_attention_heads) +
                 ") must be divisible by it");
  }
}

// DeepSpeed's "fp16" / "bf16" blocks: {"enabled", "loss_scale" (0 = dynamic),
// "initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale",
// "consecutive_hysteresis"}, with DeepSpeed's defaults (2^16, 1000, 2, 1, false).
void ParsePrecision(const json& root, Parser* p, TrainerConfig* c) {
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

// DeepSpeed's top-level keys: each must agree with the Megatron key it overlaps.
void ParseDeepSpeed(const json& root, Parser* p, TrainerConfig* c) {
  TrainingConfig& tr = c->training;
  const int64_t dp = std::max<int64_t>(
      1, c->parallel.world_size / (static_cast<int64_t>(c->parallel.tensor_model_parallel_size) *
                                   c->parallel.pipeline_model_parallel_size));
  int64_t ds_micro = 0, ds_global = 0, ds_gas = 0;
  double ds_clip = -1.0;
  p->Int(&root, "", "train_micro_batch_size_per_gpu", 1, "a positive integer", &ds_micro);
  p->Int(&root, "", "train_batch_size", 1, "a positive integer", &ds_global);
  p->Int(&root, "", "gradient_accumulation_steps", 1, "a positive integer", &ds_gas);
  p->Number(&root, "", "gradient_clipping", 0.0, false, 1e300, "a non-negative number", &ds_clip);
  const json* t = Parser::Find(&root, "training");
  auto given = [&](const char* key) { return Parser::Find(t, key) != nullptr; };
  auto agree = [&](const char* ds_key, int64_t ds, const char* mg_key, int64_t* mg) {
    if (ds == 0) return;
    if (given(mg_key) && *mg != ds) {
      p->Error(ds_key,
               std::to_string(ds) + " disagrees with training." + mg_key + " = " +
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
    tr.global_batch_size = tr.micro_batch_size * dp * std::max<int64_t>(1, ds_gas);
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
  if (const json* z = Parser::Find(&root, "zero_optimization"); z != nullptr && z->is_object()) {
    p->Int(z, "zero_optimization", "stage", 0, "0, 1, 2 or 3", &c->parallel.zero_stage);
    const json* off = Parser::Find(z, "offload_optimizer");
    if (off != nullptr && off->is_object() && off->value("device", "") == "cpu") {
      c->parallel.cpu_optimizer = true;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------

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
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // not JSON: a string
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
                                                        int world_size) {
  ASSIGN_OR_RETURN(json root, coord::ParseJson(json_text, path));
  if (!root.is_object()) return coord::InvalidArgument(path + ": expected a JSON object");
  for (const std::string& o : overrides) RETURN_IF_ERROR(ApplyOverride(o, &root));

  Parser p(path);
  TrainerConfigResult result;
  TrainerConfig& c = result.config;
  c.source_path = path;
  c.parallel.world_size = world_size;
  ParseModel(p.Section(root, "model", kModelKeys), &p, &c);
  ParseData(p.Section(root, "data", kDataKeys), &p, &c);
  ParseTraining(p.Section(root, "training", kTrainingKeys), &p, &c);
  ParseParallel(p.Section(root, "parallel", kParallelKeys), &p, &c);
  ParseDeepSpeed(root, &p, &c);
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
  resolved("data", "cache_dir", c.data.cache_dir);
  resolved("training", "save", tr.save);
  resolved("training", "load", tr.load);
  resolved("training", "metrics_file", tr.metrics_file);
  c.job = std::move(root);
  result.warnings = std::move(p.warnings());
  return result;
}

coord::StatusOr<TrainerConfigResult> LoadTrainerConfig(const std::string& path,
                                                       const std::vector<std::string>& overrides,
                                                       int world_size) {
  auto text = coord::ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseTrainerConfig(*text, path, overrides, world_size);
}

coord::Status CheckTrainable(const TrainerConfig& c) {
  std::vector<std::string> problems;
  if (c.parallel.tensor_model_parallel_size > 1) {
    problems.push_back("parallel.tensor_model_parallel_size > 1: tensor parallel is not "
                       "implemented yet (gpt-rank plan can size it)");
  }
  if (c.parallel.pipeline_model_parallel_size > 1) {
    problems.push_back("parallel.pipeline_model_parallel_size > 1: not implemented yet");
  }
  if (c.parallel.zero_stage > 2) {
    problems.push_back("zero_optimization.stage 3 (partitioned parameters) is not implemented; "
                       "use stage 1 or 2");
  }
  if (problems.empty()) return coord::Status::Ok();
  std::string all;
  for (const std::string& e : problems) all += (all.empty() ? "" : "\n") + c.source_path + ": " + e;
  return coord::FailedPrecondition(all);
}

}  // namespace gpt_rank::train
