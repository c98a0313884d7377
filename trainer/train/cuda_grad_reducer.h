// Data-parallel gradient reduction for the CUDA backend (ZeRO stage 0): the fp32
// gradient buffer on the GPU is all-reduced over NCCL in buckets that follow backward
// (CudaGptModel's GradsReadyFn). Each bucket is ordered after the kernels that
// produced it by an event recorded on the model's stream, and runs on the
// communicator's own stream, so the reduction overlaps the rest of backward without
// a host sync; EndMicroBatch then waits (bounded by the communicator's timeout) and
// orders the model's stream after the last bucket. Gradients are pre-divided through
// the loss scale, so the sum is the mean. Only the last micro-batch reduces.
// Plain C++ header (the NCCL and CUDA types stay in the .cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/status.h"
#include "trainer/dist/store.h"
#include "trainer/model/gpt.h"

namespace gpt_rank::train {

class CudaGradReducer {
 public:
  // Creates the NCCL communicator (rank, size over `store`, key "nccl/...") on
  // `device`. stream: the model's cudaStream_t.
  static coord::StatusOr<std::unique_ptr<CudaGradReducer>> Create(
      dist::KeyValueStore* store, int rank, int size, int device, void* stream, float* grads,
      size_t num_params, size_t bucket_floats, bool overlap, double timeout_s);
  ~CudaGradReducer();

  trainer::GptModel::GradsReadyFn BeginMicroBatch(int64_t m, int64_t num_micro);
  coord::Status EndMicroBatch();
  const char* describe() const;  // "NCCL 2.x on device d"

 private:
  struct Impl;
  explicit CudaGradReducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpt_rank::train
