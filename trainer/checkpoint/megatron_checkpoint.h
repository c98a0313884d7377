// Megatron-layout training checkpoints for gpt-rank: weights, Adam state and the
// TrainState needed for exact resume, one directory per iteration
// (save/iter_0000100/mp_rank_00/), every file checksummed (XXH64), written under a
// temporary name and renamed, latest_checkpointed_iteration.txt replaced last. A load
// refuses a corrupt or incomplete iteration by name and falls back to the newest older
// complete one, so a kill or a full disk at any moment never loads wrong state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace trainer {

// On-disk format, version 1 (all integers little-endian):
//   save_dir/latest_checkpointed_iteration.txt   "100\n" (Megatron's tracker file)
//   save_dir/iter_0000100/mp_rank_00/
//     model_optim_rng.bin  header (64 bytes): magic "GPTRCKPT", u32 version = 1,
//                          u32 num_tensors = 3, u64 n (floats per tensor),
//                          u64 payload bytes (= 3 * n * 4), 32 reserved zero bytes;
//                          payload: params (n,) | adam_m (n,) | adam_v (n,) as fp32;
//                          trailer (16 bytes): u64 XXH64(seed 0) of header + payload,
//                          magic "GPTREND\0". Self-checking: truncation or a flipped
//                          byte is detected without the manifest.
//     train_state.json     TrainState (below) as a JSON object.
//     manifest.json        {"format": "gpt-rank-checkpoint", "version": 1, "iteration",
//                          "n", "hash": "xxh64", "files": [{"name", "size", "xxh64"}]}
//                          written LAST inside the directory: an iteration directory
//                          without it is incomplete and never loaded.
// Writing: iter_XXXXXXX.tmp-<pid>/ is filled (each file fsynced), fsynced, renamed to
// iter_XXXXXXX (atomically exchanged if it already exists), save_dir fsynced, then the
// tracker is replaced atomically. Old iterations are left in place, as Megatron does.

inline constexpr char kLatestIterationFile[] = "latest_checkpointed_iteration.txt";

// Everything beyond the tensors that exact resume needs.
struct TrainState {
  int64_t iteration = 0;  // completed iterations
  int64_t consumed_train_samples = 0;
  int64_t consumed_valid_samples = 0;
  int64_t rng_step = 0;  // dropout counter (StepOptions::rng_step) of the next micro-batch
  uint64_t seed = 0;
  int64_t adam_step = 0;    // AdamW::step()
  // The layout it was saved in: mp_rank_00 .. mp_rank_<tp-1> hold the tensor-parallel
  // shards (gpt_params.h); vocab_size is the real vocabulary (the padding depends on
  // tp). 1 and 0 in checkpoints older than tensor parallel.
  int tensor_model_parallel_size = 1;
  int vocab_size = 0;
  // Pipeline stages (mp_rank_TT_PPP directories when > 1) and virtual chunks per stage
  // (which layers a stage held); 1 in checkpoints older than pipeline parallel.
  int pipeline_model_parallel_size = 1;
  int virtual_pipeline_model_parallel_size = 1;
  // fp16 runs: the dynamic loss scaler (LossScaler::State), so a resumed run goes on
  // with the scale it had; absent (loss_scale 0) otherwise and in older checkpoints.
  double loss_scale = 0;
  int64_t loss_scale_iter = 0, loss_scale_last_overflow = -1;
  int loss_scale_hysteresis = 0;
  std::string config_json;  // the resolved job config that produced it (stored verbatim)
};

// Which model-parallel shard's directory inside an iteration: mp_rank_TT without
// pipeline stages (Megatron's naming, and this format's before them), mp_rank_TT_PPP
// with them.
struct ModelShardId {
  int tp_rank = 0;
  int pp_rank = 0;
  bool pipeline = false;  // pp > 1: the _PPP suffix
  ModelShardId(int tp = 0) : tp_rank(tp) {}  // NOLINT(runtime/explicit): a TP rank
  ModelShardId(int tp, int pp_rank_, int pp) : tp_rank(tp), pp_rank(pp_rank_), pipeline(pp > 1) {}
};

// Views of the flat buffers to save; each is (n,) in GptParamLayout order.
struct CheckpointTensors {
  const float* params = nullptr;
  const float* adam_m = nullptr;
  const float* adam_v = nullptr;
  size_t n = 0;
};

// "save_dir/iter_0000100" (Megatron's %07d naming).
std::string CheckpointIterDir(const std::string& save_dir, int64_t iteration);

// Writes iteration state.iteration under save_dir (created if missing) and then points
// the tracker at it. Errors name the path: a directory that is not writable
// (PermissionDenied), a full disk (ResourceExhausted); on any error the temporary
// directory is removed and the tracker and the previous checkpoints are untouched.
coord::Status SaveCheckpoint(const std::string& save_dir, const TrainState& state,
                             const CheckpointTensors& tensors);

// Which part of the Adam state a load wants: [begin, end) of the flat buffer (ZeRO
// ranks want their shard; end is clipped to n), or none (generate, export).
struct OptimizerRange {
  size_t begin = 0;
  size_t end = static_cast<size_t>(-1);
  bool load = true;
};

struct LoadedCheckpoint {
  TrainState state;
  std::vector<float> params;          // (n,)
  std::vector<float> adam_m, adam_v;  // [optim_begin, optim_begin + size) of the flat state
  size_t optim_begin = 0;
  int saved_dp_shards = 0;  // > 0: the optimizer state was saved as this many ZeRO shards
  std::string path;         // the iteration directory loaded
  // One line per refused iteration, e.g. "checkpoint /s/iter_0000200 refused
  // (model_optim_rng.bin: checksum mismatch); using /s/iter_0000100". Log them.
  std::vector<std::string> warnings;
};

// Loads and verifies one iteration directory (manifest, sizes, checksums, header).
// expected_n == 0 accepts any n (e.g. generate, which learns the model config from the
// checkpoint itself); otherwise a different n is refused (FailedPrecondition).
// Errors: NotFound (no such directory, or incomplete: no manifest.json);
// FailedPrecondition for a checksum mismatch, truncation, bad header or wrong n (the
// message names the file).
// Only the TrainState of one shard's directory (manifest and checksum checked), for a
// caller that must know how an iteration was saved before reading its tensors.
coord::StatusOr<TrainState> LoadCheckpointState(const std::string& iter_dir,
                                                const ModelShardId& shard = ModelShardId());
// The first shard's state (mp_rank_00 or mp_rank_00_000): how the iteration was saved.
coord::StatusOr<TrainState> LoadFirstShardState(const std::string& iter_dir);

// shard: which model-parallel shard's directory (mp_rank_XX[_PPP]) to read.
coord::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& iter_dir, size_t expected_n,
                                                 const OptimizerRange& optimizer = {},
                                                 const ModelShardId& shard = ModelShardId());

// Loads the iteration named by the tracker; if that one is corrupt or incomplete, says
// so in warnings and falls back to the newest older complete one. With no tracker (a
// first save killed before it), the newest complete iteration is used, with a warning.
// NotFound when load_dir holds no loadable checkpoint at all (the message lists why
// each candidate was refused).
coord::StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& load_dir,
                                                       size_t expected_n,
                                                       const OptimizerRange& optimizer = {});

// True when load_dir has a tracker file or an iteration directory with a manifest:
// i.e. a run should try to resume (and fail loudly if nothing loads) instead of
// starting from scratch.
bool HasCheckpoint(const std::string& load_dir);

// LoadLatestCheckpoint's choice of iteration (tracker, fallback to older complete ones,
// warnings) with another way of loading one iteration directory (tp_checkpoint.h).
using IterationLoader = std::function<coord::StatusOr<LoadedCheckpoint>(const std::string&)>;
coord::StatusOr<LoadedCheckpoint> LoadLatestWith(const std::string& load_dir,
                                                 const IterationLoader& load_iteration);

// "mp_rank_03": the directory of tensor-parallel shard 3 inside an iteration;
// "mp_rank_03_001" that of its pipeline stage 1.
std::string MpRankDirName(const ModelShardId& shard);

// --- ZeRO checkpoints: the optimizer state in per-rank shards ---------------------
// Same directory layout as above, but model_optim_rng.bin holds the parameters only
// (num_tensors = 1) and data-parallel rank r writes zero_optim_rank_RRRRR.bin with
// Adam's m and v for its flat range (num_tensors = 2, n = the range's length). The
// manifest lists every file with its checksum and, under "zero_shards", each shard's
// file and [begin, end). A load with any number of ranks reads the ranges it needs
// from whichever shards hold them (re-sharding: DeepSpeed's universal checkpoint
// without the conversion step). The save is collective, in three steps the caller
// separates with barriers: BeginShardedSave (rank 0), WriteOptimizerShard (every
// rank) and WriteShardedModelFiles (rank 0), FinishShardedSave (rank 0, after
// gathering every rank's record). The directory is on storage all ranks share (CFS).

struct CheckpointFileRecord {
  std::string name;  // inside iter_XXXXXXX/mp_rank_00
  uint64_t size = 0;
  uint64_t xxh64 = 0;
};
struct OptimizerShardInfo {
  std::string file;
  uint64_t begin = 0, end = 0;  // flat range of m and v it holds
};

std::string OptimizerShardFileName(int dp_rank);
// The temporary directory every rank writes into (a fixed name: ranks cannot share a pid).
std::string ShardedSaveTmpDir(const std::string& save_dir, int64_t iteration);
// Rank 0: checks save_dir, removes a stale temporary of this iteration, creates it.
coord::Status BeginShardedSave(const std::string& save_dir, int64_t iteration);
// Every rank: its shard file (fsynced), inside its tensor-parallel shard's mp_rank_XX.
coord::StatusOr<CheckpointFileRecord> WriteOptimizerShard(const std::string& save_dir,
                                                          int64_t iteration, int dp_rank,
                                                          const float* adam_m, const float* adam_v,
                                                          size_t count,
                                                          const ModelShardId& shard = ModelShardId());
// Rank 0 of each tensor-parallel shard: its parameters and train_state.json.
coord::StatusOr<std::vector<CheckpointFileRecord>> WriteShardedModelFiles(
    const std::string& save_dir, const TrainState& state, const float* params, size_t n,
    const ModelShardId& shard = ModelShardId());
// Tensor parallel: the writer of each shard checks its files and writes its manifest
// (WriteShardManifest), then rank 0 checks that every shard has one and installs the
// iteration (InstallShardedSave). FinishShardedSave is both, for one shard.
coord::Status WriteShardManifest(const std::string& save_dir, const TrainState& state,
                                 const ModelShardId& shard,
                                 size_t n, const std::vector<CheckpointFileRecord>& files,
                                 const std::vector<OptimizerShardInfo>& shards);
// Every shard of the tp x pp grid must have its manifest.
coord::Status InstallShardedSave(const std::string& save_dir, const TrainState& state, int tp,
                                 int pp = 1);
// Rank 0: checks every listed file is there with its size (a rank that wrote to a
// directory rank 0 cannot see is named), writes the manifest, renames the directory
// into place and updates the tracker. On error the temporary directory is removed.
coord::Status FinishShardedSave(const std::string& save_dir, const TrainState& state, size_t n,
                                const std::vector<CheckpointFileRecord>& files,
                                const std::vector<OptimizerShardInfo>& shards);
// Best effort, after a failed step on any rank.
void AbortShardedSave(const std::string& save_dir, int64_t iteration);

// --- testing hooks -------------------------------------------------------------
// After `bytes` more bytes written by SaveCheckpoint, writes fail with errno `err`
// (e.g. ENOSPC) until reset with bytes < 0. For tests where a small tmpfs cannot be
// mounted; not thread-safe.
void SetCheckpointWriteFaultForTesting(int64_t bytes, int err);

// XXH64 (seed 0) of a buffer: the checksum used in the files above.
uint64_t Xxh64(const void* data, size_t size, uint64_t seed = 0);

}  // namespace trainer
