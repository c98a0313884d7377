// The collective operations a gpt-rank process needs from its peers, over flat
// ranges of one dtype: what torch.distributed's ProcessGroup gives Megatron and
// DeepSpeed. One interface, two implementations: gloo over TCP for the CPU backend
// (gloo_communicator.h) and NCCL for the CUDA backend (nccl_communicator.h, where the
// pointers are device pointers and every call is ordered on the communicator's stream).
//
// Every call is collective: all ranks of the group make the same calls in the same
// order with the same counts. Every call is bounded by the communicator's timeout:
// a peer that died or stopped makes the call fail with DeadlineExceeded or
// Unavailable (naming the operation and the peer when known), never hang. After an
// error the communicator is unusable; the rank should exit so the job can restart.
// Not thread-safe: one thread at a time may use a communicator (the data-parallel
// gradient reducer hands it from the training thread to its own thread and back).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpt_rank::dist {

enum class DataType { kFloat32, kFloat64 };

inline size_t DataTypeSize(DataType t) { return t == DataType::kFloat32 ? 4 : 8; }

// One message of a point-to-point batch (Communicator::SendRecv).
struct PeerOp {
  enum Kind { kSend, kRecv };
  static constexpr int kChannels = 2;
  Kind kind = kSend;
  void* data = nullptr;  // read for a send (never written), filled by a receive
  size_t count = 0;
  DataType type = DataType::kFloat32;
  int peer = 0;
  // Messages between two ranks are matched in order within a channel; channels are
  // independent (a pipeline's activations on 0, their gradients on 1: with two stages
  // in a ring both flow both ways between the same two ranks).
  int channel = 0;
  const char* what() const { return kind == kSend ? "send" : "recv"; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "gloo" or "nccl", for logs and errors.
  virtual const char* backend() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;

  // data[0, count) = sum over ranks of data[0, count), in place.
  virtual coord::Status AllReduceSum(void* data, size_t count, DataType type) = 0;

  // Reduce-scatter in place: data is (sum of counts) elements, rank r's block is
  // [offset_r, offset_r + counts[r]) with offset_r = counts[0] + ... + counts[r-1].
  // Afterwards this rank's block holds the sum over ranks of that block; the rest of
  // data is unspecified (scratch). counts.size() == size(); a count may be zero.
  virtual coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                         DataType type) = 0;

  // All-gather in place: data is (sum of counts) elements laid out as above; each
  // rank contributes its own block, and afterwards every block holds its owner's values.
  virtual coord::Status AllGather(void* data, const std::vector<size_t>& counts, DataType type) = 0;

  // data[0, count) = root's data[0, count) on every rank.
  virtual coord::Status Broadcast(void* data, size_t count, DataType type, int root) = 0;

  virtual coord::Status Barrier() = 0;

  // Point to point, for pipeline stages' activations and their gradients: not
  // collective. Rank a's k-th send to rank b meets rank b's k-th receive from a (same
  // count and type). A batch is posted at once and then waited for as a whole
  // (torch.distributed.batch_isend_irecv), so two stages that send to each other in
  // the same step (1F1B's send-forward/receive-backward) do not deadlock. Each waits
  // for its match within timeout() like a collective, so a stage whose peer died or
  // stopped fails naming that peer instead of hanging.
  virtual coord::Status SendRecv(const std::vector<PeerOp>& ops) = 0;
  coord::Status Send(const void* data, size_t count, DataType type, int peer) {
    return SendRecv({PeerOp{PeerOp::kSend, const_cast<void*>(data), count, type, peer, 0}});
  }
  coord::Status Recv(void* data, size_t count, DataType type, int peer) {
    return SendRecv({PeerOp{PeerOp::kRecv, data, count, type, peer, 0}});
  }

  // Typed conveniences.
  coord::Status AllReduceSum(float* data, size_t count) {
    return AllReduceSum(data, count, DataType::kFloat32);
  }
  coord::Status AllReduceSum(double* data, size_t count) {
    return AllReduceSum(data, count, DataType::kFloat64);
  }
};

// Even split of n elements over `parts` blocks, as ZeRO partitions the flat buffer:
// block r has ceil(n / parts) elements except at the end, where blocks are shorter or
// empty. Sums to n.
std::vector<size_t> EvenCounts(size_t n, int parts);

// Reduce-scatter and all-gather take one block count per rank: InvalidArgument
// ("<what>: 3 counts for 4 ranks") otherwise.
coord::Status CheckBlockCounts(const std::string& what, const std::vector<size_t>& counts,
                               int ranks);

// Send and Recv take another rank of the group: InvalidArgument ("<what>: peer 0 is not
// another rank of this group of 2 (this is rank 0)") otherwise.
coord::Status CheckPeer(const std::string& what, int peer, int rank, int size);

}  // namespace gpt_rank::dist

namespace gpt_rank::dist {
// The communicator of a world of one: every collective is the identity.
std::unique_ptr<Communicator> MakeSelfCommunicator();
}  // namespace gpt_rank::dist
