// A Communicator that forwards every call to another and adds up the wall time spent
// in them: the "tp-comm" / "dp-comm" timers of gpt-rank's log (Megatron's timers).
// The total is read and reset by the training thread while the data-parallel reducer
// thread may be adding to it, hence the atomic. Time on the reducer thread overlaps
// backward, so the timers say where communication happens, not what it costs the step.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "trainer/dist/communicator.h"

namespace gpt_rank::dist {

class TimedCommunicator final : public Communicator {
 public:
  explicit TimedCommunicator(Communicator* inner) : inner_(inner) {}

  // Seconds spent in calls since the last TakeSeconds.
  double TakeSeconds() { return static_cast<double>(ns_.exchange(0)) * 1e-9; }

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const char* backend() const override { return inner_->backend(); }
  std::chrono::milliseconds timeout() const override { return inner_->timeout(); }

  coord::Status AllReduceSum(void* data, size_t count, DataType type) override {
    return Timed([&] { return inner_->AllReduceSum(data, count, type); });
  }
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 DataType type) override {
    return Timed([&] { return inner_->ReduceScatterSum(data, counts, type); });
  }
  coord::Status AllGather(void* data, const std::vector<size_t>& counts, DataType type) override {
    return Timed([&] { return inner_->AllGather(data, counts, type); });
  }
  coord::Status Broadcast(void* data, size_t count, DataType type, int root) override {
    return Timed([&] { return inner_->Broadcast(data, count, type, root); });
  }
  coord::Status Barrier() override {
    return Timed([&] { return inner_->Barrier(); });
  }
  coord::Status SendRecv(const std::vector<PeerOp>& ops) override {
    return Timed([&] { return inner_->SendRecv(ops); });
  }
  using Communicator::AllReduceSum;

 private:
  template <typename Fn>
  coord::Status Timed(Fn fn) {
    if (inner_->size() == 1) return fn();  // the identity: nothing to time
    const auto t0 = std::chrono::steady_clock::now();
    coord::Status s = fn();
    ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                t0)
               .count();
    return s;
  }

  Communicator* inner_;
  std::atomic<int64_t> ns_{0};
};

}  // namespace gpt_rank::dist
