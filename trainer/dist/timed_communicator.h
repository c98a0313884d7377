// A Communicator that forwards every call to another and watches it:
//   - the wall time spent in calls, summed over threads: the "tp-comm" / "dp-comm"
//     timers of gpt-rank's log (Megatron's timers). The total is read and reset by the
//     training thread while the data-parallel reducer thread may be adding to it,
//     hence the atomic. Time on the reducer thread overlaps backward, so the timers say
//     where communication happens, not what it costs the step;
//   - the calling thread's blocked time (comm_wait.h): what the step did cost;
//   - each call in the rank's flight record (operation, group, bytes, peer; started
//     and finished), so a hang report can say which collective a rank is stuck in;
//   - an optional hook before each call (fault injection: a test stops a rank inside
//     a collective).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/flight_record.h"
#include "trainer/dist/comm_wait.h"
#include "trainer/dist/communicator.h"

namespace gpt_rank::dist {

class TimedCommunicator final : public Communicator {
 public:
  // Called after the call is in the flight record and before it runs (seq: its
  // sequence number, 0 without a recorder).
  using BeforeCallFn = std::function<void(coord::CollectiveOp op, uint64_t seq)>;

  // `name` ("tp", "dp", ...) labels the flight record's entries; `recorder` may be null.
  explicit TimedCommunicator(Communicator* inner, CommGroup group = CommGroup::kOther,
                             std::string name = "", coord::FlightRecorder* recorder = nullptr)
      : inner_(inner), group_(group), name_(std::move(name)), recorder_(recorder) {}

  // Seconds spent in calls since the last TakeSeconds.
  double TakeSeconds() { return static_cast<double>(ns_.exchange(0)) * 1e-9; }
  // Not thread-safe: set before the communicator is used.
  void set_before_call(BeforeCallFn fn) { before_call_ = std::move(fn); }

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const char* backend() const override { return inner_->backend(); }
  std::chrono::milliseconds timeout() const override { return inner_->timeout(); }

  coord::Status AllReduceSum(void* data, size_t count, DataType type) override {
    return Timed(coord::CollectiveOp::kAllReduce, count * DataTypeSize(type), -1,
                 [&] { return inner_->AllReduceSum(data, count, type); });
  }
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 DataType type) override {
    return Timed(coord::CollectiveOp::kReduceScatter, Sum(counts) * DataTypeSize(type), -1,
                 [&] { return inner_->ReduceScatterSum(data, counts, type); });
  }
  coord::Status AllGather(void* data, const std::vector<size_t>& counts, DataType type) override {
    return Timed(coord::CollectiveOp::kAllGather, Sum(counts) * DataTypeSize(type), -1,
                 [&] { return inner_->AllGather(data, counts, type); });
  }
  coord::Status Broadcast(void* data, size_t count, DataType type, int root) override {
    return Timed(coord::CollectiveOp::kBroadcast, count * DataTypeSize(type), root,
                 [&] { return inner_->Broadcast(data, count, type, root); });
  }
  coord::Status Barrier() override {
    return Timed(coord::CollectiveOp::kBarrier, 0, -1, [&] { return inner_->Barrier(); });
  }
  coord::Status SendRecv(const std::vector<PeerOp>& ops) override {
    size_t bytes = 0;
    bool sends = false, recvs = false;
    for (const PeerOp& op : ops) {
      bytes += op.count * DataTypeSize(op.type);
      (op.kind == PeerOp::kSend ? sends : recvs) = true;
    }
    const coord::CollectiveOp kind = sends && recvs ? coord::CollectiveOp::kSendRecv
                                     : sends        ? coord::CollectiveOp::kSend
                                                    : coord::CollectiveOp::kRecv;
    return Timed(kind, bytes, ops.empty() ? -1 : ops.front().peer,
                 [&] { return inner_->SendRecv(ops); });
  }
  using Communicator::AllReduceSum;

 private:
  static size_t Sum(const std::vector<size_t>& counts) {
    size_t n = 0;
    for (size_t c : counts) n += c;
    return n;
  }

  template <typename Fn>
  coord::Status Timed(coord::CollectiveOp op, size_t bytes, int peer, Fn fn) {
    if (inner_->size() == 1) return fn();  // the identity: nothing to time or wait for
    const uint64_t seq = recorder_ != nullptr
                             ? recorder_->BeginCollective(op, name_.c_str(), bytes, peer)
                             : 0;
    if (before_call_) before_call_(op, seq);
    const auto t0 = std::chrono::steady_clock::now();
    coord::Status s;
    {
      ScopedCommWait wait(group_);
      s = fn();
    }
    ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                t0)
               .count();
    if (recorder_ != nullptr) recorder_->EndCollective(seq, s.ok());
    return s;
  }

  Communicator* inner_;
  const CommGroup group_;
  const std::string name_;
  coord::FlightRecorder* recorder_;  // not owned; may be null
  BeforeCallFn before_call_;
  std::atomic<int64_t> ns_{0};
};

}  // namespace gpt_rank::dist
