// MegatronPretrainingSampler as pure index arithmetic (see data_sampler.h).
#include "trainer/data/data_sampler.h"

#include <string>

namespace trainer::data {

using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;

static Status PastTheData(int64_t first, int64_t end, int64_t total) {
  return Status(coord::StatusCode::kOutOfRange,
                "samples [" + std::to_string(first) + ", " + std::to_string(end) +
                    ") are past the dataset's " + std::to_string(total) +
                    " samples (the last partial batch is dropped, as Megatron does)");
}

StatusOr<PretrainingSampler> PretrainingSampler::Create(int64_t total_samples,
                                                        int64_t micro_batch_size, int64_t dp_rank,
                                                        int64_t dp_size) {
  if (total_samples < 0) return InvalidArgument("sampler: total_samples is negative");
  if (micro_batch_size < 1) return InvalidArgument("sampler: micro_batch_size must be >= 1");
  if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size) {
    return InvalidArgument("sampler: data-parallel rank " + std::to_string(dp_rank) +
                           " is not in [0, " + std::to_string(dp_size) + ")");
  }
  return PretrainingSampler(total_samples, micro_batch_size, dp_rank, dp_size);
}

StatusOr<std::vector<int64_t>> PretrainingSampler::MicroBatch(int64_t consumed_samples,
                                                              int64_t micro_step) const {
  if (consumed_samples < 0 || micro_step < 0) {
    return InvalidArgument("sampler: consumed_samples and micro_step must be >= 0");
  }
  // __iter__: the whole step of mbs * dp indices must fit (drop_last), then
  // get_start_end_idx picks this rank's slice.
  const int64_t step = micro_batch_size_ * dp_size_;
  const int64_t step_start = consumed_samples + micro_step * step;
  if (step_start + step > total_samples_) {
    return PastTheData(step_start, step_start + step, total_samples_);
  }
  std::vector<int64_t> indices(static_cast<size_t>(micro_batch_size_));
  const int64_t first = step_start + dp_rank_ * micro_batch_size_;
  for (int64_t i = 0; i < micro_batch_size_; ++i) indices[i] = first + i;
  return indices;
}

StatusOr<std::vector<int64_t>> PretrainingSampler::GlobalBatch(int64_t consumed_samples,
                                                               int64_t global_batch_size) const {
  const int64_t step = micro_batch_size_ * dp_size_;
  if (global_batch_size < 1 || global_batch_size % step != 0) {
    return InvalidArgument(
        "sampler: global_batch_size " + std::to_string(global_batch_size) +
        " is not a multiple of micro_batch_size * dp_size = " + std::to_string(step));
  }
  if (consumed_samples < 0) return InvalidArgument("sampler: consumed_samples must be >= 0");
  if (consumed_samples + global_batch_size > total_samples_) {
    return PastTheData(consumed_samples, consumed_samples + global_batch_size, total_samples_);
  }
  std::vector<int64_t> indices(static_cast<size_t>(global_batch_size));
  for (int64_t i = 0; i < global_batch_size; ++i) indices[i] = consumed_samples + i;
  return indices;
}

}  // namespace trainer::data
