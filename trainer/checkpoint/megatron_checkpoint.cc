// Megatron-layout checkpoints (format and crash-safety rules: megatron_checkpoint.h).
// Tensors are streamed through one XXH64 state while written and read, so a 10B
// checkpoint is hashed in the same pass that moves its bytes.
#include "trainer/checkpoint/megatron_checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

// XXH64_state_t on the stack (its layout is fixed within a libxxhash version).
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/checkpoint/save_fence.h"

namespace trainer {

namespace {

using coord::Status;
using coord::StatusOr;
using nlohmann::json;

constexpr char kMagic[8] = {'G', 'P', 'T', 'R', 'C', 'K', 'P', 'T'};
constexpr char kEndMagic[8] = {'G', 'P', 'T', 'R', 'E', 'N', 'D', '\0'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kNumTensors = 3;
constexpr size_t kHeaderBytes = 64, kTrailerBytes = 16;
constexpr char kTensorFile[] = "model_optim_rng.bin";
constexpr char kStateFile[] = "train_state.json";
constexpr char kManifestFile[] = "manifest.json";

// Streaming XXH64 (libxxhash): one state follows a tensor file through its write or read.
class Xxh64State {
 public:
  explicit Xxh64State(uint64_t seed = 0) { XXH64_reset(&state_, seed); }
  void Update(const void* data, size_t size) { XXH64_update(&state_, data, size); }
  uint64_t Digest() const { return XXH64_digest(&state_); }

 private:
  XXH64_state_t state_;
};

inline uint64_t Read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // little-endian hosts only (x86-64, aarch64)
  return v;
}
inline uint32_t Read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string Hex64(uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof(s), "%016" PRIx64, v);
  return s;
}

// --- writing ------------------------------------------------------------------------

int64_t g_fault_bytes_left = -1;  // < 0: no injected fault
int g_fault_errno = 0;

// errno -> Status, with ENOSPC/EDQUOT as ResourceExhausted so callers can tell "disk
// full" from "bug".
Status IoError(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status(coord::StatusCode::kResourceExhausted,
                  what + ": " + std::strerror(err) + " (disk full?)");
  }
  return coord::ErrnoStatus(what, err);
}

// A file being written: every byte goes through the hash and the fault injector.
class CheckedWriter {
 public:
  ~CheckedWriter() {
    if (fd_ >= 0) close(fd_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd_ < 0 ? IoError("create " + path, errno) : Status::Ok();
  }
  Status Write(const void* data, size_t size) {
    const auto* p = static_cast<const char*>(data);
    hash_.Update(p, size);
    size_ += size;
    while (size > 0) {
      size_t chunk = std::min<size_t>(size, 64u << 20);
      if (g_fault_bytes_left >= 0) {
        if (g_fault_bytes_left == 0) return IoError("write " + path_, g_fault_errno);
        chunk = std::min<size_t>(chunk, static_cast<size_t>(g_fault_bytes_left));
      }
      const ssize_t w = write(fd_, p, chunk);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return IoError("write " + path_, errno);
      if (g_fault_bytes_left >= 0) g_fault_bytes_left -= w;
      p += w;
      size -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  // fsync + close: the bytes are durable before anything renames them into place.
  Status Close() {
    if (fsync(fd_) != 0) return IoError("fsync " + path_, errno);
    const int rc = close(fd_);
    fd_ = -1;
    return rc != 0 ? IoError("close " + path_, errno) : Status::Ok();
  }
  uint64_t digest() const { return hash_.Digest(); }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  Xxh64State hash_;
  uint64_t size_ = 0;
};

void PutU32(unsigned char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(unsigned char* p, uint64_t v) { std::memcpy(p, &v, 8); }

using FileRecord = CheckpointFileRecord;

// Header, the tensors (n floats each) back to back, trailer with the content hash.
Status WriteTensors(const std::string& path, const std::string& name,
                    const std::vector<const float*>& tensors, size_t n, FileRecord* rec) {
  CheckedWriter w;
  RETURN_IF_ERROR(w.Open(path));
  const uint32_t count = static_cast<uint32_t>(tensors.size());
  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  PutU32(header + 8, kVersion);
  PutU32(header + 12, count);
  PutU64(header + 16, n);
  PutU64(header + 24, static_cast<uint64_t>(count) * n * sizeof(float));
  RETURN_IF_ERROR(w.Write(header, kHeaderBytes));
  for (const float* p : tensors) RETURN_IF_ERROR(w.Write(p, n * sizeof(float)));
  unsigned char trailer[kTrailerBytes];
  PutU64(trailer, w.digest());
  std::memcpy(trailer + 8, kEndMagic, 8);
  RETURN_IF_ERROR(w.Write(trailer, kTrailerBytes));
  RETURN_IF_ERROR(w.Close());
  *rec = {name, w.size(), w.digest()};
  return Status::Ok();
}

Status WriteSmallFile(const std::string& path, const std::string& name, const std::string& contents,
                      FileRecord* rec) {
  CheckedWriter w;
  RETURN_IF_ERROR(w.Open(path));
  RETURN_IF_ERROR(w.Write(contents.data(), contents.size()));
  RETURN_IF_ERROR(w.Close());
  if (rec != nullptr) *rec = {name, w.size(), w.digest()};
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open " + dir, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc != 0 ? IoError("fsync " + dir, err) : Status::Ok();
}

std::string StateToJson(const TrainState& s) {
  json j = {{"iteration", s.iteration},
            {"consumed_train_samples", s.consumed_train_samples},
            {"consumed_valid_samples", s.consumed_valid_samples},
            {"rng_step", s.rng_step},
            {"seed", s.seed},
            {"adam_step", s.adam_step},
            {"tensor_model_parallel_size", s.tensor_model_parallel_size},
            {"vocab_size", s.vocab_size},
            {"pipeline_model_parallel_size", s.pipeline_model_parallel_size},
            {"virtual_pipeline_model_parallel_size", s.virtual_pipeline_model_parallel_size},
            {"config_json", s.config_json}};
  if (s.loss_scale > 0) {
    j["loss_scaler"] = {{"scale", s.loss_scale},
                        {"iter", s.loss_scale_iter},
                        {"last_overflow_iter", s.loss_scale_last_overflow},
                        {"hysteresis_left", s.loss_scale_hysteresis}};
  }
  return j.dump(2) + "\n";
}

// The manifest goes last, after the data files are durable: its presence means the
// directory is complete.
Status WriteManifest(const std::string& tmp_dir, int64_t iteration, size_t n,
                     const std::vector<FileRecord>& files,
                     const std::vector<OptimizerShardInfo>& shards,
                     const ModelShardId& shard = ModelShardId()) {
  const std::string rank_dir = coord::JoinPath(tmp_dir, MpRankDirName(shard));
  json manifest = {{"format", "gpt-rank-checkpoint"},
                   {"version", kVersion},
                   {"iteration", iteration},
                   {"n", n},
                   {"hash", "xxh64"},
                   {"files", json::array()}};
  for (const FileRecord& f : files) {
    manifest["files"].push_back({{"name", f.name}, {"size", f.size}, {"xxh64", Hex64(f.xxh64)}});
  }
  if (!shards.empty()) {
    manifest["zero_shards"] = json::array();
    for (const OptimizerShardInfo& sh : shards) {
      manifest["zero_shards"].push_back({{"file", sh.file}, {"begin", sh.begin}, {"end", sh.end}});
    }
  }
  RETURN_IF_ERROR(FsyncDir(rank_dir));
  RETURN_IF_ERROR(WriteSmallFile(coord::JoinPath(rank_dir, kManifestFile), kManifestFile,
                                 manifest.dump(2) + "\n", nullptr));
  RETURN_IF_ERROR(FsyncDir(rank_dir));
  return FsyncDir(tmp_dir);
}

// Fills a fresh temporary iteration directory; the caller renames it into place.
Status WriteIterDir(const std::string& tmp_dir, const TrainState& state,
                    const CheckpointTensors& t) {
  const std::string rank_dir = coord::JoinPath(tmp_dir, MpRankDirName(0));
  RETURN_IF_ERROR(coord::MakeDirs(rank_dir));
  std::vector<FileRecord> files(2);
  RETURN_IF_ERROR(WriteTensors(coord::JoinPath(rank_dir, kTensorFile), kTensorFile,
                               {t.params, t.adam_m, t.adam_v}, t.n, &files[0]));
  RETURN_IF_ERROR(WriteSmallFile(coord::JoinPath(rank_dir, kStateFile), kStateFile,
                                 StateToJson(state), &files[1]));
  return WriteManifest(tmp_dir, state.iteration, t.n, files, {});
}

// Moves tmp_dir to final_dir. An existing final_dir (the same iteration saved again
// after a resume) is swapped out atomically where the filesystem supports it.
Status InstallIterDir(const std::string& tmp_dir, const std::string& final_dir) {
  if (rename(tmp_dir.c_str(), final_dir.c_str()) == 0) return Status::Ok();
  if (errno != EEXIST && errno != ENOTEMPTY) return IoError("rename " + tmp_dir, errno);
  if (renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    return coord::RemoveTree(tmp_dir);  // now holds the old copy
  }
  // No RENAME_EXCHANGE (e.g. NFS): move the old copy aside first. A crash in between
  // leaves no final_dir, and the load falls back to the previous iteration.
  const std::string old_dir = final_dir + ".old-" + std::to_string(getpid());
  if (rename(final_dir.c_str(), old_dir.c_str()) != 0) return IoError("rename " + final_dir, errno);
  if (rename(tmp_dir.c_str(), final_dir.c_str()) != 0) return IoError("rename " + tmp_dir, errno);
  return coord::RemoveTree(old_dir);
}

// Publishes a written iteration: the directory renamed into place, then the tracker.
// Fenced (save_fence.h) when this process has an owner: a stale generation publishes
// nothing.
Status PublishIteration(const std::string& save_dir, const std::string& tmp_dir,
                        const std::string& final_dir, int64_t iteration) {
  auto publish = [&]() -> Status {
    RETURN_IF_ERROR(InstallIterDir(tmp_dir, final_dir));
    RETURN_IF_ERROR(FsyncDir(save_dir));
    // Last: the tracker names the new iteration only once it is complete and durable.
    return coord::WriteFileAtomic(coord::JoinPath(save_dir, kLatestIterationFile),
                                  std::to_string(iteration) + "\n");
  };
  const SaveOwner* owner = ProcessSaveOwner();
  return owner ? PublishFenced(save_dir, *owner, publish) : publish();
}

}  // namespace

void SetCheckpointWriteFaultForTesting(int64_t bytes, int err) {
  g_fault_bytes_left = bytes;
  g_fault_errno = err;
}

uint64_t Xxh64(const void* data, size_t size, uint64_t seed) { return XXH64(data, size, seed); }

std::string CheckpointIterDir(const std::string& save_dir, int64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof(name), "iter_%07" PRId64, iteration);
  return coord::JoinPath(save_dir, name);
}

Status SaveCheckpoint(const std::string& save_dir, const TrainState& state,
                      const CheckpointTensors& tensors) {
  if (save_dir.empty()) return coord::InvalidArgument("SaveCheckpoint: empty save directory");
  if (state.iteration < 0) return coord::InvalidArgument("SaveCheckpoint: negative iteration");
  if (tensors.n == 0 || !tensors.params || !tensors.adam_m || !tensors.adam_v) {
    return coord::InvalidArgument("SaveCheckpoint: missing tensors");
  }
  Status st = coord::MakeDirs(save_dir);
  if (!st.ok()) return st.WithContext("checkpoint directory " + save_dir + " is not usable");
  if (access(save_dir.c_str(), W_OK) != 0) {
    return IoError("checkpoint directory " + save_dir + " is not writable", errno);
  }
  const std::string final_dir = CheckpointIterDir(save_dir, state.iteration);
  const std::string tmp_dir = final_dir + ".tmp-" + std::to_string(getpid());
  RETURN_IF_ERROR(coord::RemoveTree(tmp_dir));  // a leftover of an earlier crash with our pid
  st = WriteIterDir(tmp_dir, state, tensors);
  if (st.ok()) st = PublishIteration(save_dir, tmp_dir, final_dir, state.iteration);
  if (!st.ok()) {
    (void)coord::RemoveTree(tmp_dir);  // best effort: the error below is the one that matters
    return st.WithContext("saving checkpoint " + final_dir);
  }
  return st;
}

// --- ZeRO saves -----------------------------------------------------------------------

std::string MpRankDirName(const ModelShardId& shard) {
  char name[40];
  if (shard.pipeline) {
    std::snprintf(name, sizeof(name), "mp_rank_%02d_%03d", shard.tp_rank, shard.pp_rank);
  } else {
    std::snprintf(name, sizeof(name), "mp_rank_%02d", shard.tp_rank);
  }
  return name;
}

std::string OptimizerShardFileName(int dp_rank) {
  char name[48];
  std::snprintf(name, sizeof(name), "zero_optim_rank_%05d.bin", dp_rank);
  return name;
}

std::string ShardedSaveTmpDir(const std::string& save_dir, int64_t iteration) {
  // Each generation its own: a stale one starting the same iteration's save must not
  // remove (BeginShardedSave) or write into the current generation's.
  const SaveOwner* owner = ProcessSaveOwner();
  std::string tag;
  if (owner) {
    char hash[24];
    std::snprintf(hash, sizeof(hash), "%08x",
                  static_cast<unsigned>(Xxh64(owner->run_id.data(), owner->run_id.size(), 0)));
    tag = "-g" + std::to_string(owner->restart_count) + "-" + hash;
  }
  return CheckpointIterDir(save_dir, iteration) + ".tmp-zero" + tag;
}

Status BeginShardedSave(const std::string& save_dir, int64_t iteration) {
  if (save_dir.empty()) return coord::InvalidArgument("BeginShardedSave: empty save directory");
  Status st = coord::MakeDirs(save_dir);
  if (!st.ok()) return st.WithContext("checkpoint directory " + save_dir + " is not usable");
  if (access(save_dir.c_str(), W_OK) != 0) {
    return IoError("checkpoint directory " + save_dir + " is not writable", errno);
  }
  const std::string tmp_dir = ShardedSaveTmpDir(save_dir, iteration);
  RETURN_IF_ERROR(coord::RemoveTree(tmp_dir));  // a leftover of a crashed save
  return coord::MakeDirs(tmp_dir);  // each shard's writers make its mp_rank directory
}

StatusOr<CheckpointFileRecord> WriteOptimizerShard(const std::string& save_dir, int64_t iteration,
                                                   int dp_rank, const float* adam_m,
                                                   const float* adam_v, size_t count,
                                                   const ModelShardId& shard) {
  const std::string name = OptimizerShardFileName(dp_rank);
  const std::string dir =
      coord::JoinPath(ShardedSaveTmpDir(save_dir, iteration), MpRankDirName(shard));
  RETURN_IF_ERROR(coord::MakeDirs(dir));
  FileRecord rec;
  Status st = WriteTensors(coord::JoinPath(dir, name), name, {adam_m, adam_v}, count, &rec);
  if (!st.ok()) return st.WithContext("rank " + std::to_string(dp_rank) + " optimizer shard");
  return rec;
}

StatusOr<std::vector<CheckpointFileRecord>> WriteShardedModelFiles(const std::string& save_dir,
                                                                   const TrainState& state,
                                                                   const float* params, size_t n,
                                                                   const ModelShardId& shard) {
  const std::string rank_dir =
      coord::JoinPath(ShardedSaveTmpDir(save_dir, state.iteration), MpRankDirName(shard));
  RETURN_IF_ERROR(coord::MakeDirs(rank_dir));
  std::vector<FileRecord> files(2);
  RETURN_IF_ERROR(
      WriteTensors(coord::JoinPath(rank_dir, kTensorFile), kTensorFile, {params}, n, &files[0]));
  RETURN_IF_ERROR(WriteSmallFile(coord::JoinPath(rank_dir, kStateFile), kStateFile,
                                 StateToJson(state), &files[1]));
  return files;
}

Status WriteShardManifest(const std::string& save_dir, const TrainState& state,
                          const ModelShardId& shard, size_t n, const std::vector<CheckpointFileRecord>& files,
                          const std::vector<OptimizerShardInfo>& shards) {
  const std::string tmp_dir = ShardedSaveTmpDir(save_dir, state.iteration);
  for (const FileRecord& f : files) {
    struct stat sb;
    const std::string path = coord::JoinPath(coord::JoinPath(tmp_dir, MpRankDirName(shard)), f.name);
    if (stat(path.c_str(), &sb) != 0 || static_cast<uint64_t>(sb.st_size) != f.size) {
      return coord::FailedPrecondition(
          path +
          " is missing or has the wrong size here, although its rank wrote it: "
          "the checkpoint directory must be on storage every rank shares (CFS)");
    }
  }
  return WriteManifest(tmp_dir, state.iteration, n, files, shards, shard);
}

Status InstallShardedSave(const std::string& save_dir, const TrainState& state, int tp, int pp) {
  const std::string final_dir = CheckpointIterDir(save_dir, state.iteration);
  const std::string tmp_dir = ShardedSaveTmpDir(save_dir, state.iteration);
  Status st;
  for (int p = 0; p < pp && st.ok(); ++p) {  // every model-parallel shard is complete
    for (int r = 0; r < tp && st.ok(); ++r) {
      const std::string m =
          coord::JoinPath(coord::JoinPath(tmp_dir, MpRankDirName({r, p, pp})), kManifestFile);
      if (!coord::PathExists(m)) {
        st = coord::FailedPrecondition(m + " missing: tensor-parallel shard " + std::to_string(r) +
                                       " of " + std::to_string(tp) +
                                       (pp > 1 ? " of pipeline stage " + std::to_string(p) : "") +
                                       " was not written");
      }
    }
  }
  if (st.ok()) st = PublishIteration(save_dir, tmp_dir, final_dir, state.iteration);
  if (!st.ok()) {
    (void)coord::RemoveTree(tmp_dir);
    return st.WithContext("saving checkpoint " + final_dir);
  }
  return st;
}

Status FinishShardedSave(const std::string& save_dir, const TrainState& state, size_t n,
                         const std::vector<CheckpointFileRecord>& files,
                         const std::vector<OptimizerShardInfo>& shards) {
  Status st = WriteShardManifest(save_dir, state, 0, n, files, shards);
  if (!st.ok()) {
    AbortShardedSave(save_dir, state.iteration);
    return st.WithContext("saving checkpoint " + CheckpointIterDir(save_dir, state.iteration));
  }
  return InstallShardedSave(save_dir, state, 1);
}

void AbortShardedSave(const std::string& save_dir, int64_t iteration) {
  (void)coord::RemoveTree(ShardedSaveTmpDir(save_dir, iteration));
}

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
    if (r < 0) return IoError("read " + path, errno);
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
  if (fd < 0) return IoError("open " + path, errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) return IoError("stat " + path, errno);
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
    for (const auto& [key, v] : {std::pair<const char*, int>{"tensor_model_parallel_size",
                                                             s.tensor_model_parallel_size},
                                 {"pipeline_model_parallel_size", s.pipeline_model_parallel_size},
                                 {"virtual_pipeline_model_parallel_size",
                                  s.virtual_pipeline_model_parallel_size}}) {
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
