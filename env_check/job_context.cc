#include "env_check/job_context.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/job_spec.h"
#include "common/json_file.h"

namespace coord::env_check {
namespace {

using nlohmann::json;

Status TypeError(const std::string& file, const std::string& key, const char* expected,
                 const json& got) {
  return InvalidArgument(file + ": " + key + ": expected " + expected + ", got " + got.dump());
}

// Reads obj[key] when present into *out, checking its type and range: at most 1e9 (GB or
// seconds), so converting it to bytes or milliseconds cannot overflow. `where` is the
// JSON path of obj ("env_check").
Status Number(const std::string& file, const json& obj, const std::string& where, const char* key,
              double* out) {
  if (!obj.contains(key)) return Status::Ok();
  const json& v = obj.at(key);
  if (!v.is_number() || v.get<double>() < 0)
    return TypeError(file, where + "." + key, "a non-negative number", v);
  if (v.get<double>() > 1e9) return TypeError(file, where + "." + key, "at most 1e9", v);
  *out = v.get<double>();
  return Status::Ok();
}

Status Bool(const std::string& file, const json& obj, const std::string& where, const char* key,
            bool* out) {
  if (!obj.contains(key)) return Status::Ok();
  const json& v = obj.at(key);
  if (!v.is_boolean()) return TypeError(file, where + "." + key, "true or false", v);
  *out = v.get<bool>();
  return Status::Ok();
}

// The "env_check" section: every key known, every value typed.
Status ReadEnvCheckSection(const std::string& file, const json& s, CheckContext* ctx) {
  if (!s.is_object()) return TypeError(file, "env_check", "an object", s);
  static const char* const kKeys[] = {"shared_path",      "shared_fs_types",
                                      "min_shm_gb",       "min_free_disk_gb",
                                      "probe_deadline_s", "cuda_runtime_version"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    bool known = false;
    for (const char* k : kKeys) known |= it.key() == k;
    if (!known) {
      std::vector<std::string> names(std::begin(kKeys), std::end(kKeys));
      std::string guess = DidYouMean(it.key(), names);
      return InvalidArgument(file + ": env_check." + it.key() + ": unknown key" +
                             (guess.empty() ? "" : "; did you mean " + guess + "?"));
    }
  }
  if (s.contains("shared_path")) {
    if (!s["shared_path"].is_string())
      return TypeError(file, "env_check.shared_path", "a path string", s["shared_path"]);
    ctx->shared_path = s["shared_path"].get<std::string>();
  }
  if (s.contains("shared_fs_types")) {
    const json& t = s["shared_fs_types"];
    if (!t.is_array() || t.empty())
      return TypeError(file, "env_check.shared_fs_types", "a non-empty array of strings", t);
    ctx->shared_fs_types.clear();
    for (size_t i = 0; i < t.size(); ++i) {
      if (!t[i].is_string())
        return TypeError(file, "env_check.shared_fs_types[" + std::to_string(i) + "]", "a string",
                         t[i]);
      ctx->shared_fs_types.push_back(t[i].get<std::string>());
    }
  }
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  double shm_gb = static_cast<double>(ctx->min_shm_bytes) / kGiB;
  double disk_gb = static_cast<double>(ctx->min_free_disk_bytes) / kGiB;
  double probe_s = static_cast<double>(ctx->probe_deadline.count()) / 1000.0;
  RETURN_IF_ERROR(Number(file, s, "env_check", "min_shm_gb", &shm_gb));
  RETURN_IF_ERROR(Number(file, s, "env_check", "min_free_disk_gb", &disk_gb));
  RETURN_IF_ERROR(Number(file, s, "env_check", "probe_deadline_s", &probe_s));
  ctx->min_shm_bytes = static_cast<uint64_t>(shm_gb * kGiB);
  ctx->min_free_disk_bytes = static_cast<uint64_t>(disk_gb * kGiB);
  ctx->probe_deadline = std::chrono::milliseconds(static_cast<int64_t>(probe_s * 1000));
  if (s.contains("cuda_runtime_version")) {
    const json& v = s["cuda_runtime_version"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return TypeError(file, "env_check.cuda_runtime_version",
                       "a non-negative integer like 12040 (CUDA 12.4)", v);
    ctx->cuda_runtime_version = v.get<int>();
  }
  return Status::Ok();
}

}  // namespace

uint64_t EstimateCheckpointBytes(const json& model) {
  auto positive = [&](const char* key) -> double {
    auto it = model.find(key);
    return it != model.end() && it->is_number() && it->get<double>() > 0 ? it->get<double>() : 0;
  };
  const double layers = positive("num_layers"), hidden = positive("hidden_size");
  if (layers == 0 || hidden == 0) return 0;
  double positions = positive("max_position_embeddings");
  if (positions == 0) positions = positive("seq_length");
  // GPT-2's vocabulary padded as Megatron pads it (50257 -> 50304 by default).
  double multiple = positive("make_vocab_size_divisible_by");
  if (multiple == 0) multiple = 128;
  const double vocab = std::ceil(50257 / multiple) * multiple;
  // Per layer: QKV, projection and the 4h MLP (12h^2), their biases and two
  // LayerNorms (13h); then the embeddings and the final LayerNorm.
  const double params = layers * (12 * hidden * hidden + 13 * hidden) + (vocab + positions) * hidden +
                        2 * hidden;
  // fp32 weights plus Adam's two moments; a size past 2^64 bytes (a fuzzed model section)
  // is saturated, as converting it would be undefined.
  const double bytes = params * 12;
  return bytes < 1.8e19 ? static_cast<uint64_t>(bytes) : UINT64_MAX;
}

std::string ExpandEnvVars(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i];
      continue;
    }
    // The matching '}' (defaults may hold ${...} themselves).
    size_t j = i + 2;
    int depth = 1;
    for (; j < text.size() && depth > 0; ++j) {
      if (text.compare(j, 2, "${") == 0)
        ++depth, ++j;
      else if (text[j] == '}')
        --depth;
    }
    if (depth > 0) {  // unterminated: keep it literally
      out += text.substr(i);
      break;
    }
    std::string body = text.substr(i + 2, j - 1 - (i + 2));
    size_t sep = body.find(":-");
    std::string name = body.substr(0, sep);
    const char* v = getenv(name.c_str());
    if (v && *v)
      out += v;
    else if (sep != std::string::npos)
      out += ExpandEnvVars(body.substr(sep + 2));
    i = j - 1;
  }
  return out;
}

StatusOr<CheckContext> ContextFromJob(const std::string& job_json_text, const std::string& path) {
  ASSIGN_OR_RETURN(const json j, ParseJson(job_json_text, path));
  if (!j.is_object()) return InvalidArgument(path + ": expected a JSON object at the top level");

  CheckContext ctx;
  static const json kEmpty = json::object();
  auto section = [&](const char* name) -> StatusOr<const json*> {
    if (!j.contains(name)) return &kEmpty;
    if (!j[name].is_object()) return TypeError(path, name, "an object", j[name]);
    return &j[name];
  };
  ASSIGN_OR_RETURN(const json* launch, section("launch"));
  ASSIGN_OR_RETURN(const json* training, section("training"));
  ASSIGN_OR_RETURN(const json* parallel, section("parallel"));

  if (launch->contains("nproc_per_node")) {
    const json& v = (*launch)["nproc_per_node"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return TypeError(path, "launch.nproc_per_node", "a positive integer", v);
    ctx.nproc_per_node = v.get<int>();
  }
  if (launch->contains("master_port")) {
    const json& v = (*launch)["master_port"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 65535)
      return TypeError(path, "launch.master_port", "a port number", v);
    ctx.master_port = v.get<int>();
  }
  bool gpus = false, fp16 = false, bf16 = false;
  RETURN_IF_ERROR(Bool(path, *launch, "launch", "gpus", &gpus));
  RETURN_IF_ERROR(Bool(path, *training, "training", "fp16", &fp16));
  RETURN_IF_ERROR(Bool(path, *training, "training", "bf16", &bf16));
  bool cuda_backend =
      training->value("backend", json()) == "cuda" || parallel->value("backend", json()) == "cuda";
  ctx.gpus_required = gpus || fp16 || bf16 || cuda_backend;
  if (!ctx.gpus_required) ctx.nproc_per_node = 0;  // processes, not GPUs, to count

  // The program the ranks run, for the job_program check. A "string" command runs
  // through /bin/sh; its first word is still what must exist on the node.
  if (launch->contains("command")) {
    const json& c = (*launch)["command"];
    if (c.is_array() && !c.empty() && c[0].is_string()) {
      ctx.program = c[0].get<std::string>();
    } else if (c.is_string()) {
      std::string cmd = c.get<std::string>();
      size_t b = cmd.find_first_not_of(" \t");
      if (b != std::string::npos) ctx.program = cmd.substr(b, cmd.find_first_of(" \t", b) - b);
    }
  }
  ASSIGN_OR_RETURN(const json* model, section("model"));
  ctx.checkpoint_bytes = EstimateCheckpointBytes(*model);
  if (ctx.checkpoint_bytes > 0) ctx.min_free_disk_bytes = 2 * ctx.checkpoint_bytes;

  if (training->contains("save")) {
    const json& v = (*training)["save"];
    if (!v.is_string()) return TypeError(path, "training.save", "a path string", v);
    ctx.checkpoint_dir = ExpandEnvVars(v.get<std::string>());
  }
  if (j.contains("env_check")) RETURN_IF_ERROR(ReadEnvCheckSection(path, j["env_check"], &ctx));
  return ctx;
}

}  // namespace coord::env_check
