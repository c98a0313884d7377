// Which samples each data-parallel rank reads, as Megatron's
// MegatronPretrainingSampler (megatron/data/data_samplers.py) assigns them. The
// only state is consumed_samples (saved in checkpoints), so a resumed run reads
// exactly the batches the uninterrupted run would have. Pure functions of it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace trainer::data {

// Samples are taken in order from consumed_samples on: each step of
// micro_batch_size * dp_size consecutive indices is one micro-batch per rank,
// rank r taking slice [r * mbs, (r + 1) * mbs). A global batch is
// num_micro_batches such steps (gbs = mbs * dp * num_micro_batches), so the set
// of samples in a global batch does not depend on dp_size; only who reads which does.
// A step that does not fit in total_samples is dropped (drop_last=True).
class PretrainingSampler {
 public:
  // Errors: micro_batch_size < 1, dp_size < 1, dp_rank outside [0, dp_size).
  static coord::StatusOr<PretrainingSampler> Create(int64_t total_samples, int64_t micro_batch_size,
                                                    int64_t dp_rank, int64_t dp_size);

  // This rank's micro-batch `micro_step` (0-based) of the global batch that
  // starts at consumed_samples: mbs dataset indices. OutOfRange past the data.
  coord::StatusOr<std::vector<int64_t>> MicroBatch(int64_t consumed_samples,
                                                   int64_t micro_step) const;
  // Every sample of the global batch that starts at consumed_samples (all ranks,
  // all micro-steps): [consumed_samples, consumed_samples + global_batch_size).
  coord::StatusOr<std::vector<int64_t>> GlobalBatch(int64_t consumed_samples,
                                                    int64_t global_batch_size) const;

  int64_t total_samples() const { return total_samples_; }
  int64_t micro_batch_size() const { return micro_batch_size_; }
  int64_t dp_rank() const { return dp_rank_; }
  int64_t dp_size() const { return dp_size_; }

 private:
  PretrainingSampler(int64_t total, int64_t mbs, int64_t rank, int64_t size)
      : total_samples_(total), micro_batch_size_(mbs), dp_rank_(rank), dp_size_(size) {}

  int64_t total_samples_;
  int64_t micro_batch_size_;
  int64_t dp_rank_;
  int64_t dp_size_;
};

}  // namespace trainer::data
