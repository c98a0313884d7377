// Writing Megatron-layout checkpoints (format and crash-safety rules:
// megatron_checkpoint.h; reading: megatron_checkpoint_load.cc). Tensors are streamed
// through one XXH64 state while written and read, so a 10B checkpoint is hashed in the
// same pass that moves its bytes.
#include "trainer/checkpoint/megatron_checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "trainer/checkpoint/megatron_format.h"
#include "trainer/checkpoint/save_fence.h"

namespace trainer {

// errno -> Status, with ENOSPC/EDQUOT as ResourceExhausted so callers can tell "disk
// full" from "bug".
coord::Status CheckpointIoError(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return coord::Status(coord::StatusCode::kResourceExhausted,
                         what + ": " + std::strerror(err) + " (disk full?)");
  }
  return coord::ErrnoStatus(what, err);
}

namespace {

using coord::Status;
using coord::StatusOr;
using nlohmann::json;

// --- writing ------------------------------------------------------------------------

int64_t g_fault_bytes_left = -1;  // < 0: no injected fault
int g_fault_errno = 0;

// A file being written: every byte goes through the hash and the fault injector.
class CheckedWriter {
 public:
  ~CheckedWriter() {
    if (fd_ >= 0) close(fd_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd_ < 0 ? CheckpointIoError("create " + path, errno) : Status::Ok();
  }
  Status Write(const void* data, size_t size) {
    const auto* p = static_cast<const char*>(data);
    hash_.Update(p, size);
    size_ += size;
    while (size > 0) {
      size_t chunk = std::min<size_t>(size, 64u << 20);
      if (g_fault_bytes_left >= 0) {
        if (g_fault_bytes_left == 0) return CheckpointIoError("write " + path_, g_fault_errno);
        chunk = std::min<size_t>(chunk, static_cast<size_t>(g_fault_bytes_left));
      }
      const ssize_t w = write(fd_, p, chunk);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return CheckpointIoError("write " + path_, errno);
      if (g_fault_bytes_left >= 0) g_fault_bytes_left -= w;
      p += w;
      size -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  // fsync + close: the bytes are durable before anything renames them into place.
  Status Close() {
    if (fsync(fd_) != 0) return CheckpointIoError("fsync " + path_, errno);
    const int rc = close(fd_);
    fd_ = -1;
    return rc != 0 ? CheckpointIoError("close " + path_, errno) : Status::Ok();
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
  if (fd < 0) return CheckpointIoError("open " + dir, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc != 0 ? CheckpointIoError("fsync " + dir, err) : Status::Ok();
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
  if (errno != EEXIST && errno != ENOTEMPTY) return CheckpointIoError("rename " + tmp_dir, errno);
  if (renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    return coord::RemoveTree(tmp_dir);  // now holds the old copy
  }
  // No RENAME_EXCHANGE (e.g. NFS): move the old copy aside first. A crash in between
  // leaves no final_dir, and the load falls back to the previous iteration.
  const std::string old_dir = final_dir + ".old-" + std::to_string(getpid());
  if (rename(final_dir.c_str(), old_dir.c_str()) != 0)
    return CheckpointIoError("rename " + final_dir, errno);
  if (rename(tmp_dir.c_str(), final_dir.c_str()) != 0)
    return CheckpointIoError("rename " + tmp_dir, errno);
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
    return CheckpointIoError("checkpoint directory " + save_dir + " is not writable", errno);
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
    return CheckpointIoError("checkpoint directory " + save_dir + " is not writable", errno);
  }
  const std::string tmp_dir = ShardedSaveTmpDir(save_dir, iteration);
  RETURN_IF_ERROR(coord::RemoveTree(tmp_dir));  // a leftover of a crashed save
  return coord::MakeDirs(tmp_dir);              // each shard's writers make its mp_rank directory
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
                          const ModelShardId& shard, size_t n,
                          const std::vector<CheckpointFileRecord>& files,
                          const std::vector<OptimizerShardInfo>& shards) {
  const std::string tmp_dir = ShardedSaveTmpDir(save_dir, state.iteration);
  for (const FileRecord& f : files) {
    struct stat sb;
    const std::string path =
        coord::JoinPath(coord::JoinPath(tmp_dir, MpRankDirName(shard)), f.name);
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

}  // namespace trainer
