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
// Not here (yet): asynchronous prefetch (stage3_prefetch_bucket_size is accepted; on
// the CPU backend collectives run on the training thread, so the next gather is not
// overlapped with compute), overlap_comm, offload_param.
//
// Not thread-safe: the training thread drives it, and it alone uses the communicator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/gpt.h"

namespace gpt_rank::train {

struct Zero3Options {
  size_t reduce_bucket = 500000000;       // reduce_bucket_size (elements)
  size_t max_live = 1000000000;           // stage3_max_live_parameters
  size_t max_reuse_distance = 1000000000;  // stage3_max_reuse_distance
  size_t persistence_threshold = 100000;  // stage3_param_persistence_threshold
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
  // Largest number of gathered parameters held at once so far (the live window).
  size_t peak_live() const { return peak_live_; }

  // Megatron init of the owned range and the replica (the same values as one rank's).
  void Init(const trainer::GptConfig& config, uint64_t seed);
  void ZeroGrad();
  // After the optimizer updated params(): gathered modules are stale (dropped) and the
  // replica takes the owners' new values (all-gather).
  coord::Status ParamsUpdated();
  // params: the whole flat buffer (num_params,), e.g. from a checkpoint.
  void Load(const float* params);
  // The whole flat buffer into out (num_params,), for checkpoints: every rank calls it.
  coord::Status GatherAll(float* out);

 private:
  struct Segment;  // one tensor of a module
  struct ModuleState;
  int Index(trainer::Module m) const;
  trainer::ModuleView Views(int index, bool params, bool grads) const;
  coord::Status Gather(int index);
  coord::Status ReduceGrads(int index);
  void Free(int index);
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
  std::vector<int> kept_;  // modules holding gathered params while not in use, oldest first
  size_t live_ = 0, peak_live_ = 0;
};

}  // namespace gpt_rank::train
