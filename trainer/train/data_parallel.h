// Data parallelism for gpt-rank's flat gradient buffer, with DeepSpeed's ZeRO stages:
//   stage 0: every rank keeps the whole optimizer; gradients are all-reduced in
//            buckets (torch DDP / Megatron DDP).
//   stage 1: the optimizer state is partitioned: rank r owns the flat range
//            shard(r) (EvenCounts) and its Adam m/v; gradients are reduce-scattered
//            at the accumulation boundary so each rank holds the sum of its shard;
//            after the update the parameters are all-gathered.
//   stage 2: gradients are partitioned as well: every micro-batch's gradients are
//            reduce-scattered as backward produces them and only the shard's sum is
//            kept between micro-batches (the full buffer is backward's workspace).
// Buckets follow backward (GptModel::GradsReadyFn): once the gradients in
// [from, N) are final and at least bucket_floats of them are pending, that range is
// handed to the reducer thread (a CollectiveQueue), so communication overlaps the rest
// of backward.
// Gradients are pre-divided by the number of contributions (micro-batches x ranks)
// through the loss scale, so a sum is an average.
//
// Bucket boundaries depend only on the layout and bucket size, hence match on every
// rank; the communicator is used by the reducer thread during backward and by the
// training thread otherwise, never both at once.
#pragma once

#include <cstddef>
#include <vector>

#include "common/status.h"
#include "trainer/dist/collective_queue.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/gpt.h"

namespace gpt_rank::train {

struct DataParallelOptions {
  int zero_stage = 0;              // 0, 1 or 2
  size_t bucket_floats = 6553600;  // 25 MiB of fp32, torch DDP's bucket_cap_mb default
  bool overlap = true;             // reduce buckets on a thread during backward
};

class DataParallel {
 public:
  DataParallel(dist::Communicator* comm, size_t num_params, const DataParallelOptions& options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }
  int zero_stage() const { return options_.zero_stage; }
  dist::Communicator& comm() { return *comm_; }
  // The flat range whose optimizer state (and, under ZeRO, reduced gradient) this
  // rank owns: everything at stage 0.
  size_t shard_begin() const { return shard_begin_; }
  size_t shard_end() const { return shard_end_; }
  const std::vector<size_t>& shard_counts() const { return shard_counts_; }

  // Before micro-batch m of num_micro (0-based): whether this micro-batch reduces
  // (the last one, or every one at stage 2) and the callback to pass to Backward.
  // `grads` is the model's full gradient buffer.
  trainer::GptModel::GradsReadyFn BeginMicroBatch(float* grads, int64_t m, int64_t num_micro);
  // After Backward: waits for this micro-batch's buckets. At stage 2 it then folds
  // the shard into the running sum and, except after the last micro-batch, the
  // caller must zero the full buffer (*zero_grads = true). Errors are the
  // communicator's (a peer died or hung: DeadlineExceeded / Unavailable).
  coord::Status EndMicroBatch(float* grads, bool* zero_grads);

  // After the optimizer updated params[shard]: all-gather them (ZeRO); no-op at stage 0.
  coord::Status GatherParams(float* params);

 private:
  void Launch(size_t begin, size_t end);  // one bucket [begin, end)
  coord::Status Reduce(size_t begin, size_t end);

  dist::Communicator* comm_;
  size_t num_params_;
  DataParallelOptions options_;
  size_t shard_begin_ = 0, shard_end_ = 0;
  std::vector<size_t> shard_counts_;
  std::vector<float> shard_sum_;  // stage 2: the shard's gradient summed over micro-batches
  int64_t micro_ = 0, num_micro_ = 1;
  bool reducing_ = false;   // this micro-batch reduces
  size_t pending_end_ = 0;  // [from, pending_end_) is ready but not launched
  float* grads_ = nullptr;

  dist::CollectiveQueue queue_;  // the buckets, in launch order (threaded when overlapping)
};

}  // namespace gpt_rank::train
