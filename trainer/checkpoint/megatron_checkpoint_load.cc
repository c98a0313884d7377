// Reading Megatron-layout checkpoints: the tensor files checked against their own
// header and trailer and the manifest's size and XXH64, the manifest and
// train_state.json, and the tracker file (format: megatron_checkpoint.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/checkpoint/megatron_format.h"

namespace trainer {

namespace {

using coord::Status;
using coord::StatusOr;
using nlohmann::json;

}  // namespace

namespace {

// --- reading ------------------------------------------------------------------------

Status Corrupt(const std::string& path, const std::string& why) {
  return coord::FailedPrecondition(path + ": " + why);
}

// Reads exactly size bytes (streamed through the hash) or says the file is truncated.
Status ReadExact(int fd, const std::string& path, void* out, size_t size, Xxh64State* hash) {
  auto* p = static_cast<char*>(out);
  size_t left = size;
  while (left > 0) {
    const ssize_t r = read(fd, p, std::min<size_t>(left, 64u << 20));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return CheckpointIoError("read " + path, errno);
    if (r == 0) return Corrupt(path, "truncated");
    p += r;
    left -= static_cast<size_t>(r);
  }
  if (hash != nullptr) hash->Update(out, size);
  return Status::Ok();
}

uint64_t GetU64(const unsigned char* p) { return Read64(p); }

// Reads and verifies a tensor file against its own header/trailer and the manifest's
// size and hash: `outs.size()` tensors of n floats each; n == expected_n unless 0.
// *n_out gets n.
Status ReadTensors(const std::string& path, uint64_t manifest_size, uint64_t manifest_hash,
                   size_t expected_n, const std::vector<std::vector<float>*>& outs,
                   uint64_t* n_out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return CheckpointIoError("open " + path, errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) return CheckpointIoError("stat " + path, errno);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size != manifest_size) {
    return Corrupt(path, "size " + std::to_string(file_size) + " bytes, manifest says " +
                             std::to_string(manifest_size) + " (truncated?)");
  }
  Xxh64State hash;
  unsigned char header[kHeaderBytes];
  RETURN_IF_ERROR(ReadExact(fd, path, header, kHeaderBytes, &hash));
  if (std::memcmp(header, kMagic, 8) != 0) return Corrupt(path, "bad magic (not a checkpoint)");
  if (Read32(header + 8) != kVersion) {
    return Corrupt(path, "unsupported version " + std::to_string(Read32(header + 8)));
  }
  const uint64_t n = GetU64(header + 16);
  const uint64_t count = outs.size();
  if (Read32(header + 12) != count || GetU64(header + 24) != count * n * 4 ||
      file_size != kHeaderBytes + count * n * 4 + kTrailerBytes) {
    return Corrupt(path, "header sizes do not match the file size");
  }
  if (expected_n != 0 && n != expected_n) {
    return Corrupt(path, "holds " + std::to_string(n) + " parameters, the model has " +
                             std::to_string(expected_n) + " (different model config?)");
  }
  for (std::vector<float>* v : outs) {
    v->resize(n);  // (n,)
    RETURN_IF_ERROR(ReadExact(fd, path, v->data(), n * sizeof(float), &hash));
  }
  const uint64_t content_hash = hash.Digest();
  unsigned char trailer[kTrailerBytes];
  RETURN_IF_ERROR(ReadExact(fd, path, trailer, kTrailerBytes, &hash));
  if (std::memcmp(trailer + 8, kEndMagic, 8) != 0 || GetU64(trailer) != content_hash ||
      hash.Digest() != manifest_hash) {
    return Corrupt(path, "checksum mismatch (xxh64)");
  }
  *n_out = n;
  return Status::Ok();
}

// nlohmann's "[json.exception.type_error.302] type must be number, but is string"
// without its tag, after the JSON path of the field that threw it.
Status BadField(const std::string& path, const std::string& field, const json::exception& e) {
  const std::string what = e.what();
  const size_t tag_end = what.find("] ");
  return Corrupt(path, "bad field " + field + ": " +
                           (tag_end == std::string::npos ? what : what.substr(tag_end + 2)));
}

StatusOr<TrainState> ParseState(const std::string& path, const std::string& text) {
  // The shared parser bounds the nesting and reports 1e400 or invalid UTF-8 by line:column.
  StatusOr<json> parsed = coord::ParseJson(text, path);
  if (!parsed.ok()) return coord::FailedPrecondition(parsed.status().message());
  const json& j = *parsed;
  if (!j.is_object()) return Corrupt(path, "not a JSON object");
  TrainState s;
  std::string field;  // the JSON path being read, named if it throws
  auto at = [&field](const json& parent, const char* parent_path, const char* key) -> const json& {
    field = coord::JsonChildPath(parent_path, key);
    return parent.at(key);
  };
  auto value = [&field, &j](const char* key, int fallback) {
    field = key;
    return coord::JsonValue(j, key, fallback);
  };
  try {
    s.iteration = coord::JsonGet<int64_t>(at(j, "", "iteration"));
    s.consumed_train_samples = coord::JsonGet<int64_t>(at(j, "", "consumed_train_samples"));
    s.consumed_valid_samples = coord::JsonGet<int64_t>(at(j, "", "consumed_valid_samples"));
    s.rng_step = coord::JsonGet<int64_t>(at(j, "", "rng_step"));
    s.seed = coord::JsonGet<uint64_t>(at(j, "", "seed"));
    s.adam_step = coord::JsonGet<int64_t>(at(j, "", "adam_step"));
    s.config_json = at(j, "", "config_json").get<std::string>();
    // Absent in checkpoints older than tensor parallel: one shard, vocab from the config.
    s.tensor_model_parallel_size = value("tensor_model_parallel_size", 1);
    s.vocab_size = value("vocab_size", 0);
    s.pipeline_model_parallel_size = value("pipeline_model_parallel_size", 1);
    s.virtual_pipeline_model_parallel_size = value("virtual_pipeline_model_parallel_size", 1);
    for (const auto& [key, v] :
         {std::pair<const char*, int>{"tensor_model_parallel_size", s.tensor_model_parallel_size},
          {"pipeline_model_parallel_size", s.pipeline_model_parallel_size},
          {"virtual_pipeline_model_parallel_size", s.virtual_pipeline_model_parallel_size}}) {
      if (v < 1 || v > 4096) {
        return Corrupt(path, std::string(key) + " " + std::to_string(v) + " out of range");
      }
    }
    if (auto ls = j.find("loss_scaler"); ls != j.end()) {
      s.loss_scale = coord::JsonGet<double>(at(*ls, "loss_scaler", "scale"));
      s.loss_scale_iter = coord::JsonGet<int64_t>(at(*ls, "loss_scaler", "iter"));
      s.loss_scale_last_overflow =
          coord::JsonGet<int64_t>(at(*ls, "loss_scaler", "last_overflow_iter"));
      s.loss_scale_hysteresis = coord::JsonGet<int>(at(*ls, "loss_scaler", "hysteresis_left"));
    }
  } catch (const json::exception& e) {
    return BadField(path, field, e);
  }
  return s;
}

struct ManifestFile {
  uint64_t size = 0, hash = 0;
  bool present = false;
};

Status ParseManifestJson(const std::string& path, const json& j,
                         std::map<std::string, ManifestFile>* files,
                         std::vector<OptimizerShardInfo>* shards);

// name -> (size, hash) for the files the format requires.
Status ParseManifest(const std::string& path, std::map<std::string, ManifestFile>* files,
                     std::vector<OptimizerShardInfo>* shards) {
  auto text = coord::ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == coord::StatusCode::kNotFound) {
      return coord::NotFound(path + " missing: incomplete checkpoint");
    }
    return text.status();
  }
  StatusOr<json> j = coord::ParseJson(*text, path);
  if (!j.ok()) return coord::FailedPrecondition(j.status().message());
  // The fields are checked before they are read; a throw left is still an error.
  try {
    return ParseManifestJson(path, *j, files, shards);
  } catch (const json::exception& e) {
    return Corrupt(path, std::string("bad field: ") + e.what());
  }
}

Status ParseManifestJson(const std::string& path, const json& j,
                         std::map<std::string, ManifestFile>* files,
                         std::vector<OptimizerShardInfo>* shards) {
  auto format = j.is_object() ? j.find("format") : j.end();
  if (!j.is_object() || format == j.end() || *format != "gpt-rank-checkpoint" ||
      !j.contains("files") || !j["files"].is_array()) {
    return Corrupt(path, "not a gpt-rank checkpoint manifest");
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() ||
      version->get<uint64_t>() != kVersion) {
    return Corrupt(path, "unsupported manifest version " +
                             (version == j.end() ? std::string("(none)") : version->dump()));
  }
  const json& listed = j["files"];
  for (size_t i = 0; i < listed.size(); ++i) {
    const json& f = listed[i];
    if (!f.is_object() || !f.contains("name") || !f.contains("size") || !f.contains("xxh64") ||
        !f["name"].is_string() || !f["size"].is_number_unsigned() || !f["xxh64"].is_string()) {
      return Corrupt(path, "malformed file entry files[" + std::to_string(i) +
                               "] (expected {\"name\": string, \"size\": integer >= 0, "
                               "\"xxh64\": hex string})");
    }
    ManifestFile& m = (*files)[f["name"].get<std::string>()];
    m.size = coord::JsonGet<uint64_t>(f["size"]);
    m.hash = std::strtoull(f["xxh64"].get<std::string>().c_str(), nullptr, 16);
    m.present = true;
  }
  for (const char* need : {kTensorFile, kStateFile}) {
    if (!(*files)[need].present) return Corrupt(path, std::string("does not list ") + need);
  }
  if (j.contains("zero_shards")) {
    if (!j["zero_shards"].is_array()) return Corrupt(path, "zero_shards is not an array");
    auto n = j.find("n");
    if (n != j.end() && !n->is_number_unsigned()) {
      return Corrupt(path, "n: expected an integer >= 0, got " + n->dump());
    }
    uint64_t next = 0;  // shards tile [0, n) in order
    const json& zero = j["zero_shards"];
    for (size_t i = 0; i < zero.size(); ++i) {
      const json& sh = zero[i];
      if (!sh.is_object() || !sh.contains("file") || !sh["file"].is_string() ||
          !sh.contains("begin") || !sh["begin"].is_number_unsigned() || !sh.contains("end") ||
          !sh["end"].is_number_unsigned()) {
        return Corrupt(path, "malformed zero_shards entry zero_shards[" + std::to_string(i) +
                                 "] (expected {\"file\": string, \"begin\", \"end\": "
                                 "integers >= 0})");
      }
      OptimizerShardInfo info{sh["file"].get<std::string>(), coord::JsonGet<uint64_t>(sh["begin"]),
                              coord::JsonGet<uint64_t>(sh["end"])};
      if (info.begin != next || info.end < info.begin || !(*files)[info.file].present) {
        return Corrupt(path, "zero_shards entry " + info.file +
                                 " does not continue the previous range or is not listed");
      }
      next = info.end;
      shards->push_back(info);
    }
    if (next != (n == j.end() ? 0 : n->get<uint64_t>())) {
      return Corrupt(path, "zero_shards do not cover n");
    }
  }
  return Status::Ok();
}

// Iterations with an iter_XXXXXXX directory (temporaries and .old copies excluded).
std::vector<int64_t> ListIterations(const std::string& dir) {
  std::vector<int64_t> out;
  auto names = coord::ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.size() < 6 || name.compare(0, 5, "iter_") != 0) continue;
    const std::string digits = name.substr(5);
    if (!std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 18) continue;
    if (coord::IsDirectory(coord::JoinPath(dir, name))) out.push_back(std::stoll(digits));
  }
  std::sort(out.rbegin(), out.rend());  // newest first
  return out;
}

// The tracker's iteration, or -1 with *why set when it is missing or unreadable.
int64_t ReadTracker(const std::string& load_dir, std::string* why) {
  const std::string path = coord::JoinPath(load_dir, kLatestIterationFile);
  auto text = coord::ReadFile(path);
  if (!text.ok()) {
    *why = text.status().message();
    return -1;
  }
  std::string s = *text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
    *why = path + ": not an iteration number: \"" + s.substr(0, 40) + "\"";
    return -1;
  }
  return std::stoll(s);
}

}  // namespace

namespace {

// The manifest of one mp_rank_XX directory and its train_state.json, checked against it.
Status ReadRankState(const std::string& iter_dir, const ModelShardId& shard,
                     std::map<std::string, ManifestFile>* files,
                     std::vector<OptimizerShardInfo>* shards, TrainState* state) {
  if (!coord::IsDirectory(iter_dir)) return coord::NotFound("no checkpoint directory " + iter_dir);
  const std::string rank_dir = coord::JoinPath(iter_dir, MpRankDirName(shard));
  RETURN_IF_ERROR(ParseManifest(coord::JoinPath(rank_dir, kManifestFile), files, shards));
  const std::string state_path = coord::JoinPath(rank_dir, kStateFile);
  ASSIGN_OR_RETURN(std::string state_text, coord::ReadFile(state_path));
  const ManifestFile& sm = (*files)[kStateFile];
  if (state_text.size() != sm.size) return Corrupt(state_path, "size differs from the manifest");
  if (Xxh64(state_text.data(), state_text.size()) != sm.hash) {
    return Corrupt(state_path, "checksum mismatch (xxh64)");
  }
  ASSIGN_OR_RETURN(*state, ParseState(state_path, state_text));
  return Status::Ok();
}

}  // namespace

StatusOr<TrainState> LoadCheckpointState(const std::string& iter_dir, const ModelShardId& shard) {
  std::map<std::string, ManifestFile> files;
  std::vector<OptimizerShardInfo> shards;
  TrainState state;
  RETURN_IF_ERROR(ReadRankState(iter_dir, shard, &files, &shards, &state));
  return state;
}

StatusOr<TrainState> LoadFirstShardState(const std::string& iter_dir) {
  const ModelShardId staged(0, 0, 2);  // mp_rank_00_000
  if (coord::IsDirectory(coord::JoinPath(iter_dir, MpRankDirName(staged)))) {
    return LoadCheckpointState(iter_dir, staged);
  }
  return LoadCheckpointState(iter_dir, ModelShardId());
}

StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& iter_dir, size_t expected_n,
                                          const OptimizerRange& optimizer,
                                          const ModelShardId& shard) {
  std::map<std::string, ManifestFile> files;
  std::vector<OptimizerShardInfo> shards;
  LoadedCheckpoint out;
  out.path = iter_dir;
  RETURN_IF_ERROR(ReadRankState(iter_dir, shard, &files, &shards, &out.state));
  const std::string rank_dir = coord::JoinPath(iter_dir, MpRankDirName(shard));
  const ManifestFile& tm = files[kTensorFile];
  const std::string tensor_path = coord::JoinPath(rank_dir, kTensorFile);
  uint64_t n = 0;
  if (shards.empty()) {
    RETURN_IF_ERROR(ReadTensors(tensor_path, tm.size, tm.hash, expected_n,
                                {&out.params, &out.adam_m, &out.adam_v}, &n));
  } else {
    RETURN_IF_ERROR(ReadTensors(tensor_path, tm.size, tm.hash, expected_n, {&out.params}, &n));
    out.saved_dp_shards = static_cast<int>(shards.size());
  }
  // The optimizer range this caller wants, cut out of the full tensors or assembled
  // from the shards that overlap it.
  const size_t begin = optimizer.load ? std::min<size_t>(optimizer.begin, n) : 0;
  const size_t end = optimizer.load ? std::min<size_t>(optimizer.end, n) : 0;
  out.optim_begin = begin;
  if (shards.empty()) {
    if (begin != 0 || end != n) {
      out.adam_m = std::vector<float>(out.adam_m.begin() + static_cast<std::ptrdiff_t>(begin),
                                      out.adam_m.begin() + static_cast<std::ptrdiff_t>(end));
      out.adam_v = std::vector<float>(out.adam_v.begin() + static_cast<std::ptrdiff_t>(begin),
                                      out.adam_v.begin() + static_cast<std::ptrdiff_t>(end));
    }
    return out;
  }
  out.adam_m.assign(end > begin ? end - begin : 0, 0.0f);
  out.adam_v.assign(out.adam_m.size(), 0.0f);
  for (const OptimizerShardInfo& sh : shards) {
    const size_t b = std::max<size_t>(begin, sh.begin), e = std::min<size_t>(end, sh.end);
    if (b >= e) continue;
    const ManifestFile& fm = files[sh.file];
    std::vector<float> m, v;
    uint64_t count = 0;
    RETURN_IF_ERROR(ReadTensors(coord::JoinPath(rank_dir, sh.file), fm.size, fm.hash,
                                sh.end - sh.begin, {&m, &v}, &count));
    std::copy(m.begin() + static_cast<std::ptrdiff_t>(b - sh.begin),
              m.begin() + static_cast<std::ptrdiff_t>(e - sh.begin),
              out.adam_m.begin() + static_cast<std::ptrdiff_t>(b - begin));
    std::copy(v.begin() + static_cast<std::ptrdiff_t>(b - sh.begin),
              v.begin() + static_cast<std::ptrdiff_t>(e - sh.begin),
              out.adam_v.begin() + static_cast<std::ptrdiff_t>(b - begin));
  }
  return out;
}

StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& load_dir, size_t expected_n,
                                                const OptimizerRange& optimizer) {
  return LoadLatestWith(load_dir, [&](const std::string& iter_dir) {
    return LoadCheckpoint(iter_dir, expected_n, optimizer);
  });
}

StatusOr<LoadedCheckpoint> LoadLatestWith(const std::string& load_dir,
                                          const IterationLoader& load_iteration) {
  std::string tracker_problem;
  const int64_t latest = ReadTracker(load_dir, &tracker_problem);
  std::vector<int64_t> candidates;
  std::vector<std::string> warnings;
  if (latest >= 0)
    candidates.push_back(latest);
  else
    warnings.push_back("no usable " + std::string(kLatestIterationFile) + " (" + tracker_problem +
                       "); using the newest complete iteration");
  for (int64_t it : ListIterations(load_dir)) {
    // Newer than the tracker means its save never finished: never trust it.
    if (latest < 0 || it < latest) candidates.push_back(it);
  }
  std::string refused;  // the last refusal, named in the next success's warning
  std::vector<std::string> reasons;
  for (int64_t it : candidates) {
    const std::string dir = CheckpointIterDir(load_dir, it);
    auto loaded = load_iteration(dir);
    if (loaded.ok()) {
      if (!refused.empty()) warnings.push_back(refused + "; using " + dir);
      warnings.insert(warnings.end(), loaded->warnings.begin(), loaded->warnings.end());
      loaded->warnings = std::move(warnings);
      return loaded;
    }
    if (!refused.empty()) warnings.push_back(refused);
    refused = "checkpoint " + dir + " refused (" + loaded.status().message() + ")";
    reasons.push_back(refused);
  }
  std::string msg = "no loadable checkpoint in " + load_dir;
  if (latest < 0) msg += " (" + tracker_problem + ")";
  for (const std::string& r : reasons) msg += "; " + r;
  return coord::NotFound(msg);
}

bool HasCheckpoint(const std::string& load_dir) {
  if (coord::PathExists(coord::JoinPath(load_dir, kLatestIterationFile))) return true;
  for (int64_t it : ListIterations(load_dir)) {
    for (const ModelShardId& first : {ModelShardId(), ModelShardId(0, 0, 2)}) {
      const std::string m = coord::JoinPath(
          coord::JoinPath(CheckpointIterDir(load_dir, it), MpRankDirName(first)), kManifestFile);
      if (coord::PathExists(m)) return true;
    }
  }
  return false;
}

}  // namespace trainer
