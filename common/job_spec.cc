// The job spec parser (see job_spec.h). Runs in coordctl and coordd when a job
// is submitted. It owns the JSON syntax check (line:column), the top-level key
// table and the "launch" section; every problem in the file is collected and
// returned at once, one line each, so a user fixes the spec in a single pass.
// The trainer validates "model", "data", "training" and "parallel" itself.
#include "common/job_spec.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/fs.h"
#include "common/hostfile.h"
#include "common/json_file.h"

namespace coord {
namespace {

using json = nlohmann::json;

constexpr int kMaxProcsPerNode = 1024;
constexpr int kMaxHangTimeoutS = 7 * 24 * 3600;  // beyond a week it is a typo
// Start-up is not a step: loading a 100B checkpoint from NFS, or a rendezvous of
// hundreds of nodes, takes minutes while a healthy step takes seconds. Ten minutes
// covers that without letting a rank stuck before its first step go unnoticed for long.
constexpr int kDefaultStartupTimeoutS = 600;
constexpr double kMaxKillGraceS = 3600;
constexpr size_t kMaxShown = 60;  // values quoted in messages are cut here

constexpr char kLaunchExample[] =
    R"("launch": {"nproc_per_node": 2, "command": ["python3", "train.py"]})";

// ---------------------------------------------------------------------------
// Tables

enum class KeyType { kAny, kObject, kString };

struct TopLevelKey {
  const char* name;
  KeyType type;
};

// Every top-level key we accept. Coord's own first; then DeepSpeed's, which keep
// DeepSpeed's meaning so a DeepSpeed config can be pasted in (the trainer reads them).
constexpr TopLevelKey kTopLevelKeys[] = {
    {"name", KeyType::kString},  // checked further in CheckName
    {"launch", KeyType::kObject},
    {"model", KeyType::kObject},
    {"data", KeyType::kObject},
    {"training", KeyType::kObject},
    {"parallel", KeyType::kObject},
    {"checkpoint", KeyType::kObject},  // also DeepSpeed's (an object there too)
    {"logging", KeyType::kObject},
    {"env_check", KeyType::kObject},
    {"description", KeyType::kString},
    {"comment", KeyType::kAny},              // JSON has no comments; this key is for notes
    {"deepspeed_config", KeyType::kString},  // path of a DeepSpeed config to merge
    {"train_batch_size", KeyType::kAny},
    {"train_micro_batch_size_per_gpu", KeyType::kAny},
    {"gradient_accumulation_steps", KeyType::kAny},
    {"optimizer", KeyType::kAny},
    {"scheduler", KeyType::kAny},
    {"fp16", KeyType::kAny},
    {"bf16", KeyType::kAny},
    {"bfloat16", KeyType::kAny},  // DeepSpeed's older spelling of bf16
    {"amp", KeyType::kAny},
    {"zero_optimization", KeyType::kAny},
    {"zero_allow_untested_optimizer", KeyType::kAny},
    {"zero_force_ds_cpu_optimizer", KeyType::kAny},
    {"gradient_clipping", KeyType::kAny},
    {"gradient_predivide_factor", KeyType::kAny},
    {"prescale_gradients", KeyType::kAny},
    {"sparse_gradients", KeyType::kAny},
    {"communication_data_type", KeyType::kAny},
    {"seq_parallel_communication_data_type", KeyType::kAny},
    {"data_types", KeyType::kAny},
    {"steps_per_print", KeyType::kAny},
    {"wall_clock_breakdown", KeyType::kAny},
    {"memory_breakdown", KeyType::kAny},
    {"dump_state", KeyType::kAny},
    {"disable_allgather", KeyType::kAny},
    {"dataloader_drop_last", KeyType::kAny},
    {"activation_checkpointing", KeyType::kAny},
    {"flops_profiler", KeyType::kAny},
    {"comms_logger", KeyType::kAny},
    {"timers", KeyType::kAny},
    {"tensorboard", KeyType::kAny},
    {"wandb", KeyType::kAny},
    {"csv_monitor", KeyType::kAny},
    {"comet", KeyType::kAny},
    {"elasticity", KeyType::kAny},
    {"autotuning", KeyType::kAny},
    {"aio", KeyType::kAny},
    {"pipeline", KeyType::kAny},
    {"sparse_attention", KeyType::kAny},
    {"tensor_parallel", KeyType::kAny},
    {"curriculum_learning", KeyType::kAny},
    {"data_efficiency", KeyType::kAny},
    {"progressive_layer_drop", KeyType::kAny},
    {"eigenvalue", KeyType::kAny},
    {"quantize_training", KeyType::kAny},
    {"compression_training", KeyType::kAny},
    {"weight_quantization", KeyType::kAny},
    {"hybrid_engine", KeyType::kAny},
    {"compile", KeyType::kAny},
    {"nebula", KeyType::kAny},
    {"graph_harvesting", KeyType::kAny},
    {"use_data_before_expert_parallel_", KeyType::kAny},
};

// The rank environment Coord sets itself (architecture.md, "Rank environment");
// a job overriding one would break rendezvous or restarts.
constexpr const char* kCoordEnv[] = {
    "RANK",         "LOCAL_RANK",          "WORLD_SIZE",    "LOCAL_WORLD_SIZE",
    "NODE_RANK",    "GROUP_RANK",          "MASTER_ADDR",   "MASTER_PORT",
    "COORD_JOB_ID", "COORD_RESTART_COUNT", "COORD_JOB_TAG", "COORD_PROGRESS_FD",
};

// ---------------------------------------------------------------------------
// Showing values and paths in messages

// Never throws: invalid UTF-8 (impossible after parsing, but cheap to guard) is replaced.
std::string Dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// A JSON value as written, cut short: messages stay readable, and a deeply
// nested value cannot make this recurse without bound.
void AppendShown(const json& v, int depth, std::string* out) {
  if (!v.is_structured()) {
    *out += Dump(v);
    return;
  }
  bool is_object = v.is_object();
  *out += is_object ? '{' : '[';
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) *out += ", ";
    first = false;
    if (depth >= 2 || out->size() > kMaxShown) {
      *out += "...";
      break;
    }
    if (is_object) *out += Dump(it.key()) + ": ";
    AppendShown(*it, depth + 1, out);
  }
  *out += is_object ? '}' : ']';
}

std::string Shown(const json& v) {
  std::string out;
  AppendShown(v, 0, &out);
  if (out.size() <= kMaxShown + 3) return out;
  size_t cut = kMaxShown;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return out.substr(0, cut) + "...";
}

std::string Child(const std::string& parent, const std::string& key) {
  return JsonChildPath(parent, key);
}
std::string Index(const std::string& parent, size_t i) { return JsonIndexPath(parent, i); }

// "expected a string, got 1; write "1"": numbers and booleans are usually meant as text.
std::string ExpectedString(const json& v) {
  std::string msg = "expected a string, got " + Shown(v);
  if (v.is_number() || v.is_boolean()) msg += "; write \"" + Dump(v) + "\"";
  return msg;
}

// ---------------------------------------------------------------------------
// Collecting problems

class Checker {
 public:
  explicit Checker(const std::string& path) : path_(path) {}

  void Error(const std::string& where, const std::string& what) {
    errors_.push_back(path_ + ": " + where + ": " + what);
  }
  void Warn(const std::string& where, const std::string& what) {
    warnings_.push_back(path_ + ": " + where + ": " + what);
  }
  void UnknownKey(const std::string& where, const std::string& key,
                  const std::vector<std::string>& known) {
    std::string guess = DidYouMean(key, known);
    Warn(where, guess.empty() ? "unknown key" : "unknown key; did you mean " + guess + "?");
  }
  // An integer in [min, max]; floats, strings and booleans are errors, never truncated.
  bool Int(const json& v, const std::string& where, long long min, long long max,
           const std::string& expected, int* out);

  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::string path_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

bool Checker::Int(const json& v, const std::string& where, long long min, long long max,
                  const std::string& expected, int* out) {
  std::string got = "expected " + expected + ", got " + Shown(v);
  if (!v.is_number_integer()) {
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (!s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos) {
        got += "; write " + s + " without quotes";
      }
    } else if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
        got += "; write " + std::to_string(static_cast<long long>(d));
      }
    }
    Error(where, got);
    return false;
  }
  bool too_big = v.is_number_unsigned()
                     ? v.get<unsigned long long>() > static_cast<unsigned long long>(max)
                     : v.get<long long>() > max;
  if (too_big) {
    std::string limit = std::to_string(max);
    bool says_limit = expected.find(limit) != std::string::npos;
    Error(where, says_limit ? got : got + "; the maximum is " + limit);
    return false;
  }
  long long value = v.get<long long>();  // fits: it is at most max
  if (value < min) {
    Error(where, got);
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// ---------------------------------------------------------------------------
// The "launch" section: one parser per key, in a table

using LaunchParser = void (*)(const json& v, const std::string& where, Checker* c, LaunchSpec* out);

void ParseNprocPerNode(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  c->Int(v, where, 1, kMaxProcsPerNode, "a positive integer", &out->nproc_per_node);
}

void ParseMasterPort(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  c->Int(v, where, 0, 65535, "a port from 0 to 65535 (0: pick a free port)", &out->master_port);
}

void ParseMaxRestarts(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  c->Int(v, where, 0, INT_MAX, "a non-negative integer", &out->max_restarts);
}

void ParseHangTimeout(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  c->Int(v, where, 0, kMaxHangTimeoutS, "a non-negative integer (seconds; 0: no hang detection)",
         &out->hang_timeout_s);
}

void ParseStartupTimeout(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  c->Int(v, where, 0, kMaxHangTimeoutS,
         "a non-negative integer (seconds; 0: no startup deadline)", &out->startup_timeout_s);
}

// Seconds from 0 to 3600 (fractions allowed), kept as milliseconds.
void ParseSecondsToMs(const json& v, const std::string& where, Checker* c, int* out_ms) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > kMaxKillGraceS) {
    c->Error(where, "expected a number of seconds from 0 to 3600, got " + Shown(v));
    return;
  }
  *out_ms = static_cast<int>(std::llround(v.get<double>() * 1000));
}

void ParseRestartBackoff(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  ParseSecondsToMs(v, where, c, &out->restart_backoff_ms);
}

void ParseKillGrace(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  ParseSecondsToMs(v, where, c, &out->kill_grace_ms);
}

// N or "MIN:MAX" (torchrun's --nnodes), 1 <= MIN <= MAX.
void ParseNnodes(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  const std::string expected =
      R"(expected a positive integer or "MIN:MAX" (elastic, as torchrun's --nnodes), got )" +
      Shown(v);
  long lo = 0, hi = 0;
  if (v.is_number_integer()) {
    lo = hi = v.get<long>();
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    char tail = 0;
    const int n = std::sscanf(s.c_str(), "%ld:%ld%c", &lo, &hi, &tail);
    if (n == 1 && s.find(':') == std::string::npos) hi = lo;
    if (n < 1 || n > 2 || (n == 1 && s.find(':') != std::string::npos) ||
        s.find_first_not_of("0123456789:") != std::string::npos) {
      c->Error(where, expected);
      return;
    }
  } else {
    c->Error(where, expected);
    return;
  }
  if (lo < 1 || hi < lo || hi > kMaxHosts) {
    c->Error(where, expected + " (need 1 <= MIN <= MAX <= " + std::to_string(kMaxHosts) + ")");
    return;
  }
  out->min_nodes = static_cast<int>(lo);
  out->max_nodes = static_cast<int>(hi);
}

bool IsEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char ch) { return std::isalnum(ch) || ch == '_'; });
}

void ParseEnv(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  if (!v.is_object()) {
    c->Error(where, R"(expected an object of "NAME": "value" strings, got )" + Shown(v));
    return;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& name = it.key();
    std::string at = Child(where, name);
    if (!IsEnvName(name)) {
      c->Error(at,
               "not a valid environment variable name; use letters, digits and '_', "
               "not starting with a digit");
      continue;
    }
    bool reserved = std::any_of(std::begin(kCoordEnv), std::end(kCoordEnv),
                                [&](const char* r) { return name == r; });
    if (reserved) {
      c->Error(at, "Coord sets " + name + " for every rank; remove it from launch.env");
    } else if (!it->is_string()) {
      c->Error(at, ExpectedString(*it));
    } else if (HasNul(it->get_ref<const std::string&>())) {
      c->Error(at, "the value contains a NUL character (\\u0000); remove it");
    } else {
      out->env[name] = it->get<std::string>();
    }
  }
}

void ParseCommand(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  constexpr char kExample[] = R"(e.g. "command": ["python3", "train.py", "--lr", "3e-4"])";
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.find_first_not_of(" \t\r\n") == std::string::npos) {
      c->Error(where, std::string("empty command; ") + kExample);
    } else if (HasNul(s)) {
      c->Error(where, "the command contains a NUL character (\\u0000); remove it");
    } else {
      out->command = {"/bin/sh", "-c", s};
    }
    return;
  }
  if (!v.is_array() || v.empty()) {
    c->Error(where, "expected a non-empty array of strings (argv) or a shell command string, got " +
                        Shown(v) + "; " + kExample);
    return;
  }
  std::vector<std::string> argv;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& arg = v[i];
    if (!arg.is_string()) {
      c->Error(Index(where, i), ExpectedString(arg));
    } else if (arg.get_ref<const std::string&>().empty()) {
      c->Error(Index(where, i), "empty argument; remove it or give it a value");
    } else if (HasNul(arg.get_ref<const std::string&>())) {
      c->Error(Index(where, i), "the argument contains a NUL character (\\u0000); remove it");
    } else {
      argv.push_back(arg.get<std::string>());
    }
  }
  if (argv.size() == v.size()) out->command = std::move(argv);
}

void ParseWorkdir(const json& v, const std::string& where, Checker* c, LaunchSpec* out) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
      v.get_ref<const std::string&>()[0] != '/' || HasNul(v.get_ref<const std::string&>())) {
    c->Error(where, "expected an absolute path, got " + Shown(v) + R"(; e.g. "/home/me/run")");
    return;
  }
  out->workdir = v.get<std::string>();
}

struct LaunchKey {
  const char* name;
  LaunchParser parse;
};

constexpr LaunchKey kLaunchKeys[] = {
    {"nproc_per_node", ParseNprocPerNode},
    {"nnodes", ParseNnodes},
    {"master_port", ParseMasterPort},
    {"env", ParseEnv},
    {"command", ParseCommand},
    {"workdir", ParseWorkdir},
    {"max_restarts", ParseMaxRestarts},
    {"restart_backoff_s", ParseRestartBackoff},
    {"hang_timeout_s", ParseHangTimeout},
    {"startup_timeout_s", ParseStartupTimeout},
    {"kill_grace_s", ParseKillGrace},
};

void ParseLaunch(const json& launch, Checker* c, LaunchSpec* out) {
  std::vector<std::string> known;
  for (const LaunchKey& k : kLaunchKeys) known.push_back(k.name);
  for (auto it = launch.begin(); it != launch.end(); ++it) {
    const LaunchKey* key = nullptr;
    for (const LaunchKey& k : kLaunchKeys) {
      if (it.key() == k.name) key = &k;
    }
    std::string where = Child("launch", it.key());
    if (key == nullptr) {
      c->UnknownKey(where, it.key(), known);
    } else {
      key->parse(*it, where, c, out);
    }
  }
  if (!launch.contains("startup_timeout_s")) {
    out->startup_timeout_s = DefaultStartupTimeoutS(out->hang_timeout_s);
  }
  // The built-in trainer (gpt-rank) is not launchable yet, so a job must say what to run.
  if (!launch.contains("command")) {
    c->Error("launch.command", R"(required; e.g. "command": ["python3", "pretrain_gpt2.py"])");
  }
}

// ---------------------------------------------------------------------------
// Top level

void CheckName(const json& v, Checker* c, JobSpec* spec) {
  bool ok = v.is_string() && !v.get_ref<const std::string&>().empty() &&
            v.get_ref<const std::string&>().size() <= 64;
  if (ok) {
    for (unsigned char ch : v.get_ref<const std::string&>()) {
      ok = ok && (std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-');
    }
  }
  if (!ok) {
    c->Error("name", "expected 1 to 64 letters, digits, '.', '_' or '-', got " + Shown(v) +
                         R"(; e.g. "name": "gpt2-small.run1")");
    return;
  }
  spec->name = v.get<std::string>();
}

const TopLevelKey* FindTopLevelKey(const std::string& name) {
  for (const TopLevelKey& k : kTopLevelKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

void CheckTopLevel(const json& root, Checker* c, JobSpec* spec) {
  std::vector<std::string> known;
  for (const TopLevelKey& k : kTopLevelKeys) known.push_back(k.name);
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string where = Child("", it.key());
    const TopLevelKey* key = FindTopLevelKey(it.key());
    if (key == nullptr) {
      c->UnknownKey(where, it.key(), known);
    } else if (key->type == KeyType::kObject && !it->is_object()) {
      c->Error(where, "expected an object, got " + Shown(*it) +
                          (it.key() == "launch" ? std::string("; e.g. ") + kLaunchExample : ""));
    } else if (it.key() == "name") {
      CheckName(*it, c, spec);
    } else if (key->type == KeyType::kString && !it->is_string()) {
      c->Error(where, ExpectedString(*it));
    } else if (it.key() == "launch") {
      ParseLaunch(*it, c, &spec->launch);
    }
  }
  if (!root.contains("launch")) c->Error("launch", std::string("required; add ") + kLaunchExample);
}

// "cannot read job spec X: <strerror>", keeping ReadFile's code (NotFound, ...).
Status ReadError(const std::string& path, const Status& st) {
  const std::string& m = st.message();
  size_t sep = m.rfind(": ");
  std::string reason = sep == std::string::npos ? m : m.substr(sep + 2);
  return Status(st.code(), "cannot read job spec " + path + ": " + reason);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

StatusOr<JobSpecResult> ParseJobSpec(const std::string& json_text, const std::string& path) {
  std::string body = json_text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? json_text.substr(3) : json_text;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument(path + ": empty file; expected a JSON object such as {" +
                           kLaunchExample + "}");
  }
  Checker checker(path);
  std::vector<std::string> duplicates;
  StatusOr<json> parsed = ParseJson(json_text, path, &duplicates);
  if (!parsed.ok()) return parsed.status();
  const json& root = *parsed;
  for (const std::string& dup : duplicates) {
    checker.Error(dup, "duplicate key; JSON would keep only the last one, so remove the other");
  }
  JobSpecResult result;
  result.spec.source_path = path;
  result.spec.json_text = json_text;
  if (!root.is_object()) {
    return InvalidArgument(path + ": expected a JSON object at the top level, got " + Shown(root) +
                           "; e.g. {" + kLaunchExample + "}");
  }
  CheckTopLevel(root, &checker, &result.spec);
  if (!checker.errors().empty()) {
    // Warnings go along: an unknown key is often why a required one is "missing".
    std::string message;
    for (const std::string& e : checker.errors()) message += (message.empty() ? "" : "\n") + e;
    for (const std::string& w : checker.warnings()) message += "\n" + w;
    return InvalidArgument(message);
  }
  result.warnings = checker.warnings();
  return result;
}

StatusOr<JobSpecResult> LoadJobSpec(const std::string& path) {
  StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return ReadError(path, text.status());
  return ParseJobSpec(*text, path);
}

int DefaultStartupTimeoutS(int hang_timeout_s) {
  // Never below the hang timeout: no first step is expected faster than a later one.
  return hang_timeout_s > 0 ? std::max(kDefaultStartupTimeoutS, hang_timeout_s) : 0;
}

std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  auto lower = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  std::string w = lower(word);
  size_t threshold = std::max<size_t>(1, w.size() / 3);
  std::string best;
  size_t best_distance = threshold + 1;
  std::vector<size_t> row;
  for (const std::string& candidate : candidates) {
    std::string cand = lower(candidate);
    // Levenshtein distance, one row at a time.
    row.resize(cand.size() + 1);
    for (size_t j = 0; j <= cand.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= w.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= cand.size(); ++j) {
        size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (w[i - 1] != cand[j - 1])});
        diagonal = above;
      }
    }
    if (row[cand.size()] < best_distance) {  // strict: ties keep the first candidate
      best_distance = row[cand.size()];
      best = candidate;
    }
  }
  return best;
}

}  // namespace coord
