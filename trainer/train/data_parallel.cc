// Bucketed gradient reduction and ZeRO partitioning (data_parallel.h).
#include "trainer/train/data_parallel.h"

#include <algorithm>
#include <cstring>


namespace gpt_rank::train {

DataParallel::DataParallel(dist::Communicator* comm, size_t num_params,
                           const DataParallelOptions& options)
    : comm_(comm),
      num_params_(num_params),
      options_(options),
      queue_(options.overlap && comm->size() > 1) {
  options_.bucket_floats = std::max<size_t>(options_.bucket_floats, 1);
  if (options_.zero_stage >= 1) {
    shard_counts_ = dist::EvenCounts(num_params, comm->size());
    for (int r = 0; r < comm->rank(); ++r) shard_begin_ += shard_counts_[static_cast<size_t>(r)];
    shard_end_ = shard_begin_ + shard_counts_[static_cast<size_t>(comm->rank())];
  } else {
    shard_counts_ = {num_params};
    shard_end_ = num_params;
  }
  if (options_.zero_stage == 2 && comm->size() > 1) shard_sum_.assign(shard_end_ - shard_begin_, 0);
}

DataParallel::~DataParallel() = default;

trainer::GptModel::GradsReadyFn DataParallel::BeginMicroBatch(float* grads, int64_t m,
                                                              int64_t num_micro) {
  micro_ = m;
  num_micro_ = num_micro;
  grads_ = grads;
  pending_end_ = num_params_;
  reducing_ = comm_->size() > 1 && (options_.zero_stage == 2 || m == num_micro - 1);
  if (!reducing_) return {};
  return [this](size_t from) {
    if (from < pending_end_ && (pending_end_ - from >= options_.bucket_floats || from == 0)) {
      Launch(from, pending_end_);
      pending_end_ = from;
    }
  };
}

void DataParallel::Launch(size_t begin, size_t end) {
  queue_.Submit([this, begin, end] { return Reduce(begin, end); });
}

coord::Status DataParallel::Reduce(size_t begin, size_t end) {
  if (options_.zero_stage == 0) return comm_->AllReduceSum(grads_ + begin, end - begin);
  // Reduce-scatter the bucket: rank r receives the part of it inside shard(r).
  std::vector<size_t> counts(shard_counts_.size(), 0);
  size_t shard_lo = 0;
  for (size_t r = 0; r < shard_counts_.size(); ++r) {
    const size_t lo = std::max(begin, shard_lo), hi = std::min(end, shard_lo + shard_counts_[r]);
    counts[r] = hi > lo ? hi - lo : 0;
    shard_lo += shard_counts_[r];
  }
  return comm_->ReduceScatterSum(grads_ + begin, counts, dist::DataType::kFloat32);
}

coord::Status DataParallel::EndMicroBatch(float* grads, bool* zero_grads) {
  *zero_grads = false;
  if (!reducing_) return coord::Status::Ok();
  if (pending_end_ > 0) {  // Backward without the callback, or a partial last bucket
    Launch(0, pending_end_);
    pending_end_ = 0;
  }
  RETURN_IF_ERROR(queue_.Drain());
  if (options_.zero_stage != 2) return coord::Status::Ok();
  // Stage 2: keep only the shard's sum across micro-batches.
  const size_t n = shard_end_ - shard_begin_;
  float* shard = grads + shard_begin_;
  const bool last = micro_ == num_micro_ - 1;
  if (micro_ == 0) {
    if (!last) std::memcpy(shard_sum_.data(), shard, n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) shard_sum_[i] += shard[i];
    if (last) std::memcpy(shard, shard_sum_.data(), n * sizeof(float));
  }
  *zero_grads = !last;
  return coord::Status::Ok();
}

coord::Status DataParallel::GatherParams(float* params) {
  if (options_.zero_stage == 0 || comm_->size() == 1) return coord::Status::Ok();
  return comm_->AllGather(params, shard_counts_, dist::DataType::kFloat32);
}

}  // namespace gpt_rank::train
