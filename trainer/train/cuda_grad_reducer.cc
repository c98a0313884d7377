// Bucketed NCCL all-reduce overlapped with backward (see cuda_grad_reducer.h).
#include "trainer/train/cuda_grad_reducer.h"

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "trainer/dist/nccl_communicator.h"

namespace gpt_rank::train {

struct CudaGradReducer::Impl {
  std::unique_ptr<dist::NcclCommunicator> comm;
  cudaStream_t model_stream = nullptr;
  float* grads = nullptr;
  size_t num_params = 0, bucket_floats = 0;
  bool overlap = true;
  bool reducing = false;
  size_t pending_end = 0;           // [from, pending_end) is final but not yet reduced
  std::vector<cudaEvent_t> events;  // one per bucket launched this step, reused
  size_t next_event = 0;
  coord::Status error;
  std::string description;

  ~Impl() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }

  cudaEvent_t Event() {
    if (next_event == events.size()) {
      cudaEvent_t e = nullptr;
      if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) return nullptr;
      events.push_back(e);
    }
    return events[next_event++];
  }

  // [begin, end) is final on the model's stream: reduce it on the communicator's.
  void Launch(size_t begin, size_t end) {
    if (!error.ok() || begin >= end) return;
    cudaEvent_t ready = Event();
    if (ready == nullptr || cudaEventRecord(ready, model_stream) != cudaSuccess ||
        cudaStreamWaitEvent(comm->stream(), ready, 0) != cudaSuccess) {
      error = coord::Internal("CUDA event for gradient bucket [" + std::to_string(begin) + ", " +
                              std::to_string(end) + "): " + cudaGetErrorString(cudaGetLastError()));
      return;
    }
    error = comm->AllReduceSumAsync(grads + begin, end - begin, dist::DataType::kFloat32);
  }
};

CudaGradReducer::CudaGradReducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaGradReducer::~CudaGradReducer() = default;

coord::StatusOr<std::unique_ptr<CudaGradReducer>> CudaGradReducer::Create(
    dist::KeyValueStore* store, int rank, int size, int device, void* stream, float* grads,
    size_t num_params, size_t bucket_floats, bool overlap, double timeout_s) {
  dist::NcclOptions options;
  options.device = device;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000.0));
  options.key_prefix = "nccl/grads";
  ASSIGN_OR_RETURN(auto comm, dist::NcclCommunicator::Create(store, rank, size, options));
  auto impl = std::make_unique<Impl>();
  impl->description = "NCCL " + comm->nccl_version() + " on device " + std::to_string(device);
  impl->comm = std::move(comm);
  impl->model_stream = static_cast<cudaStream_t>(stream);
  impl->grads = grads;
  impl->num_params = num_params;
  impl->bucket_floats = bucket_floats == 0 ? num_params : bucket_floats;
  impl->overlap = overlap;
  return std::unique_ptr<CudaGradReducer>(new CudaGradReducer(std::move(impl)));
}

const char* CudaGradReducer::describe() const { return impl_->description.c_str(); }

trainer::GptModel::GradsReadyFn CudaGradReducer::BeginMicroBatch(int64_t m, int64_t num_micro) {
  Impl* d = impl_.get();
  d->reducing = m + 1 == num_micro;
  d->pending_end = d->num_params;
  d->next_event = 0;
  d->error = coord::Status::Ok();
  if (!d->reducing || !d->overlap) return {};
  return [d](size_t from) {
    if (from == 0 || d->pending_end - from >= d->bucket_floats) {
      d->Launch(from, d->pending_end);
      d->pending_end = from;
    }
  };
}

coord::Status CudaGradReducer::EndMicroBatch() {
  Impl* d = impl_.get();
  if (!d->reducing) return coord::Status::Ok();
  if (d->pending_end > 0) {  // no overlap, or buckets left: reduce the rest now
    d->Launch(0, d->pending_end);
    d->pending_end = 0;
  }
  RETURN_IF_ERROR(d->error);
  RETURN_IF_ERROR(d->comm->Synchronize());  // bounded: a dead peer fails here, never hangs
  return coord::Status::Ok();
}

}  // namespace gpt_rank::train
