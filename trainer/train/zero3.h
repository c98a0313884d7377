// ZeRO stage 3 on the CPU backend (DeepSpeed's meaning): the parameters of this
// rank's tensor-parallel shard are partitioned over the data-parallel group and
// gathered module by module just before use.
//
// Partition. The flat buffer (gpt_params.h) is split into even contiguous ranges
// (EvenCounts, as ZeRO 1/2 split the optimizer): rank r permanently holds the fp32
// parameters, the reduced gradients and (in the shard) Adam m, v of range r only. The
// ranges are the ZeRO-1/2 ones, so checkpoints keep the ZeRO shard format and
// re-shard across DP sizes and stages unchanged.
//
// Persistent tensors. A tensor with fewer than stage3_param_persistence_threshold
// elements (LayerNorms and biases in practice) is also kept whole on every rank (the
// replica): a gather moves only the other tensors' elements, and the module's buffer
// takes the persistent ones from the replica. Its gradient and optimizer state are
// still partitioned like any other element (DeepSpeed does the same); after each step
// the owners' updated elements are all-gathered into every replica.
//
// Modules (GptModel's ParamSource): the embedding (wte, wpe), each layer, the head
// (final LayerNorm + wte). Acquire gathers a module into a buffer of its own (one
// all-gather of its non-persistent elements, packed in flat order: rank r's block is
// exactly its range's part); Release after forward frees it unless its next use comes
// within stage3_max_reuse_distance parameters and the live window stays within
// stage3_max_live_parameters (the head, used again at once by backward, stays);
// Release after backward reduce-scatters the module's gradients in buckets of at most
// reduce_bucket_size elements into the owners' partitions (accumulated over
// micro-batches) and frees them. wte's gradient comes from two modules (head, then
// embedding): each reduces its own contribution, so no module holds it between them.
// Before a gather, modules kept for reuse are evicted (oldest first) while the window
// would exceed stage3_max_live_parameters; the module in use always gets gathered.
//
// Prefetch and overlap (the gathers and reduce-scatters run in order on a
// CollectiveQueue's thread when either is on). Acquire starts the gathers of the
// modules that follow in the trace (forward, then backward) while their sum stays under
// stage3_prefetch_bucket_size and the window under stage3_max_live_parameters, so the
// next layer arrives while this one computes; a prefetched module waits in the kept
// list, evictable like a kept one. With overlap_comm a backward Release queues its
// reduce-scatter and returns, so it runs under the next module's backward (one at a
// time: a Release first waits for the previous module's, so at most two modules'
// gradients are held). Drain (the
// shard calls it at the end of every Forward and Backward) waits for all of it, so the
// communicator is free for the training loop between passes and the partition's
// gradients are final.
//
// Not here (yet): offload_param (the CPU backend's parameters already live in host
// memory).
//
// Not thread-safe: the training thread drives it; it and the queue's thread (in turn,
// through the queue) alone use the communicator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/collective_queue.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/gpt.h"

namespace gpt_rank::train {

struct Zero3Options {
  size_t reduce_bucket = 500000000;       // reduce_bucket_size (elements)
  size_t max_live = 1000000000;           // stage3_max_live_parameters
  size_t max_reuse_distance = 1000000000;  // stage3_max_reuse_distance
  size_t persistence_threshold = 100000;  // stage3_param_persistence_threshold
  size_t prefetch_bucket = 50000000;      // stage3_prefetch_bucket_size (0: no prefetch)
  bool overlap_comm = false;              // reduce-scatter under the next module's backward
};

class Zero3Params final : public trainer::ParamSource {
 public:
  // layout: this rank's tensor-parallel shard; dp: the data-parallel group (not owned).
  Zero3Params(const trainer::GptParamLayout& layout, dist::Communicator* dp,
              const Zero3Options& options);
  ~Zero3Params() override;

  coord::StatusOr<trainer::ModuleView> Acquire(trainer::Module m, trainer::Pass pass) override;
  coord::Status Release(trainer::Module m, trainer::Pass pass) override;

  // The owned flat range and every rank's count.
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  const std::vector<size_t>& counts() const { return counts_; }
  float* params() { return params_.data(); }  // (end - begin,)
  float* grads() { return grads_.data(); }    // (end - begin,) reduced, summed over micro-batches
  size_t persistent_numel() const { return replica_.size(); }
  const Zero3Options& options() const { return options_; }
  // Largest number of gathered parameters held at once so far (the live window).
  size_t peak_live() const { return peak_live_; }

  // Megatron init of the owned range and the replica (the same values as one rank's).
  void Init(const trainer::GptConfig& config, uint64_t seed);
  coord::Status ZeroGrad();
  // Waits for every queued gather and reduce-scatter; the first error.
  coord::Status Drain();
  // After the optimizer updated params(): gathered modules are stale (dropped) and the
  // replica takes the owners' new values (all-gather).
  coord::Status ParamsUpdated();
  // params: the whole flat buffer (num_params,), e.g. from a checkpoint.
  coord::Status Load(const float* params);
  // The whole flat buffer into out (num_params,), for checkpoints: every rank calls it.
  coord::Status GatherAll(float* out);

 private:
  struct Segment;  // one tensor of a module
  struct ModuleState;
  int Index(trainer::Module m) const;
  trainer::ModuleView Views(int index, bool params, bool grads) const;
  // Allocates the module's buffer (counted in the live window) and queues its gather.
  void StartGather(int index);
  coord::Status FillAndGather(int index, float* buf);
  coord::Status ReduceGrads(int index, float* buf);
  // The gathers of the modules after trace position `pos`, within the prefetch bucket.
  void Prefetch(size_t pos);
  size_t TracePosition(int index, bool backward) const;
  void Free(int index);
  // Runs task on the queue (after everything queued before it) and waits for it.
  coord::Status Collective(dist::CollectiveQueue::Task task);
  // Parameters gathered between releasing module `index` after `pass` and its next use.
  size_t ReuseDistance(int index, bool backward) const;

  trainer::GptParamLayout layout_;
  dist::Communicator* dp_;
  Zero3Options options_;
  size_t begin_ = 0, end_ = 0;
  std::vector<size_t> counts_;
  std::vector<float> params_, grads_;  // the partition
  std::vector<float> replica_;         // persistent tensors, whole, in flat order
  std::vector<size_t> replica_counts_;  // per rank: its persistent elements (all-gather blocks)
  std::vector<ModuleState> modules_;   // embedding, layers 0..L-1, head
  std::vector<size_t> reuse_forward_, reuse_backward_;
  std::vector<int> trace_;  // module indices in use order: forward, then backward
  std::vector<int> kept_;  // modules holding gathered params while not in use, oldest first
  size_t live_ = 0, peak_live_ = 0;
  dist::CollectiveQueue::Ticket last_reduce_ = 0;  // the newest queued reduce-scatter
  std::unique_ptr<dist::CollectiveQueue> queue_;  // last: its tasks use the fields above
};

}  // namespace gpt_rank::train
