// The CUDA backend's Communicator: NCCL collectives on one GPU per rank. Pointers
// are device pointers on options.device, and every op is enqueued on the
// communicator's own stream (stream()). The synchronous ops (the Communicator
// interface) wait for that stream before returning, bounded by timeout();
// AllReduceSumAsync only enqueues, so the data-parallel gradient buckets reduce on
// the comm stream while backward keeps running on the compute stream, and
// Synchronize() later waits for all of them.
//
// Ordering is the caller's job: NCCL reads `data` when the op runs on stream(),
// so whatever produced it on another stream must be ordered first (record an
// event on the compute stream, cudaStreamWaitEvent(stream(), event)), and whoever
// consumes the result after an async op must wait on stream() the same way.
//
// The NCCL communicator is non-blocking (ncclConfig_t::blocking = 0): init and
// every enqueue are polled with ncclCommGetAsyncError, so a dead or hung peer
// turns into DeadlineExceeded (then ncclCommAbort) or Unavailable, never a hang.
// After such an error the communicator is aborted and every later op returns that
// error; argument errors caught before anything is enqueued leave it usable.
//
// Not thread-safe (as Communicator): one thread at a time. Each op makes
// options.device current on the calling thread, so the communicator may be
// handed between threads.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/store.h"

// nccl.h's handle (ncclComm_t is ncclComm*); declared here so users of this
// header don't need nccl.h.
struct ncclComm;

namespace gpt_rank::dist {

struct NcclOptions {
  // CUDA device ordinal this rank uses (usually LOCAL_RANK).
  int device = 0;
  // Bounds the unique-id wait, init, every op and the shutdown in the destructor.
  std::chrono::milliseconds timeout{300000};
  // Store keys are key_prefix + "/unique_id"; distinct prefixes give distinct
  // communicators on one store (e.g. a restart generation, or a TP group).
  std::string key_prefix = "nccl";
};

class NcclCommunicator final : public Communicator {
 public:
  // Rank 0 creates the NCCL unique id and publishes it in `store` under
  // key_prefix + "/unique_id"; the other ranks wait for it (bounded by
  // options.timeout). Then every rank initializes its NCCL communicator on
  // options.device, again bounded by options.timeout. Errors name the rank,
  // host, device, NCCL version and NCCL's own error text.
  static coord::StatusOr<std::unique_ptr<NcclCommunicator>> Create(KeyValueStore* store, int rank,
                                                                   int size,
                                                                   const NcclOptions& options);

  // Finalizes and destroys the NCCL communicator (bounded by timeout(); aborts
  // it instead after an error or on timeout), then frees the stream.
  ~NcclCommunicator() override;

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  int device() const { return device_; }
  // Every op is enqueued on this stream (non-blocking w.r.t. the legacy default stream).
  cudaStream_t stream() const { return stream_; }
  // "2.28.9", the library's version (not the header's).
  const std::string& nccl_version() const { return version_; }

  // Communicator: each enqueues on stream() and waits for it, bounded by timeout().
  coord::Status AllReduceSum(void* data, size_t count, DataType type) override;
  using Communicator::AllReduceSum;  // the typed float*/double* overloads
  // Equal counts: one ncclReduceScatter, in place. Uneven counts: one ncclReduce
  // per block to its owner, in one NCCL group.
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 DataType type) override;
  // Equal counts: one in-place ncclAllGather. Uneven counts: one ncclBroadcast per
  // block from its owner, in one NCCL group.
  coord::Status AllGather(void* data, const std::vector<size_t>& counts, DataType type) override;
  coord::Status Broadcast(void* data, size_t count, DataType type, int root) override;
  // An all-reduce of one float on a device scratch word.
  coord::Status Barrier() override;
  coord::Status SendRecv(const std::vector<PeerOp>& ops) override;

  // Enqueues data[0, count) += other ranks' data on stream() and returns without
  // waiting for the reduction (only for NCCL to accept the op, bounded by
  // timeout()). The result is valid once Synchronize() returns or after a
  // cudaStreamWaitEvent on an event recorded on stream().
  coord::Status AllReduceSumAsync(void* data, size_t count, DataType type);
  // Waits for everything enqueued on stream(), bounded by timeout().
  coord::Status Synchronize();

 private:
  // One op, for messages; formatted only on error.
  struct Op {
    const char* name;  // "all-reduce"
    size_t count;      // elements
    DataType type;
  };

  NcclCommunicator(int rank, int size, const NcclOptions& options);

  coord::Status Init(KeyValueStore* store);
  // The usable check every op starts with; also makes device_ current.
  coord::Status Begin(const Op& op);
  // After an NCCL call returned ncclInProgress (non-blocking comm): polls until
  // NCCL has accepted the op or failed, or the deadline passes.
  coord::Status WaitAccepted(const Op& op, std::chrono::steady_clock::time_point deadline);
  // Polls stream_ and the comm's async error until the stream is idle.
  coord::Status WaitStream(const Op& op, std::chrono::steady_clock::time_point deadline);
  // Checks an NCCL call's result; waits for acceptance on ncclInProgress.
  coord::Status Check(int result, const char* call, const Op& op,
                      std::chrono::steady_clock::time_point deadline);
  // DeadlineExceeded / Unavailable for `op`, naming this rank.
  coord::Status GroupedPerBlock(
      const Op& op, const std::vector<size_t>& counts, char* bytes, size_t elem,
      std::chrono::steady_clock::time_point deadline, const char* call,
      const std::function<int(char* block, size_t n, int owner)>& per_block);
  coord::Status TimedOut(const Op& op) const;
  coord::Status AsyncError(const Op& op, int state) const;
  // Aborts the comm, remembers `status` as the reason every later op fails, returns it.
  coord::Status Fail(coord::Status status);
  // "all-reduce of 1024 floats"
  std::string Describe(const Op& op) const;
  // "nccl all-reduce of 1024 floats on rank 1 of 8 (...)", the prefix of every error.
  std::string Context(const Op& op) const;
  // "rank 1 of 8 (host gpu3, device 1, NCCL 2.28.9)"
  std::string Where() const;
  std::chrono::steady_clock::time_point Deadline() const;

  const int rank_;
  const int size_;
  const int device_;
  const std::chrono::milliseconds timeout_;
  const std::string key_prefix_;
  std::string host_;
  std::string version_ = "?";

  ncclComm* comm_ = nullptr;       // null before init and after an abort
  cudaStream_t stream_ = nullptr;  // owned; null until created
  float* scratch_ = nullptr;       // (1,) device word for Barrier
  coord::Status broken_;           // the first error; ok while usable
  // Async all-reduces enqueued since the last wait on stream_, for messages.
  size_t pending_ops_ = 0;
  size_t pending_elements_ = 0;
};

}  // namespace gpt_rank::dist
