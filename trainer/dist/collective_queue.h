// Runs a rank's collectives in submission order on a thread of their own, so they
// overlap the training thread's compute: the data-parallel gradient buckets
// (data_parallel.h) and ZeRO-3's parameter gathers and gradient reduce-scatters
// (zero3.h). Every rank submits the same sequence, so the collectives match across
// ranks however the threads are scheduled.
//
// The first error wins: later tasks are skipped (after a failed collective the
// communicator is unusable) and every Wait from then on returns it. While tasks are
// pending the queue's thread owns the communicator; the training thread may use it
// again once Drain returned.
//
// Without a thread (threaded = false: one rank, or overlap turned off) Submit runs the
// task at once, so the same caller code is synchronous.
//
// The time a caller spends blocked in Wait/Drain counts as its thread's wait in
// `group` (comm_wait.h): the training thread waiting for the reducer's buckets.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "trainer/dist/comm_wait.h"

namespace gpt_rank::dist {

class CollectiveQueue {
 public:
  using Task = std::function<coord::Status()>;
  using Ticket = uint64_t;  // 1, 2, ... in submission order; 0 is "none"

  explicit CollectiveQueue(bool threaded, CommGroup group = CommGroup::kData);
  ~CollectiveQueue();  // finishes the pending tasks first
  CollectiveQueue(const CollectiveQueue&) = delete;
  CollectiveQueue& operator=(const CollectiveQueue&) = delete;

  bool threaded() const { return worker_.joinable(); }
  Ticket Submit(Task task);
  // Until task `ticket` (and so every task before it) has finished; the first error.
  coord::Status Wait(Ticket ticket);
  // Until every submitted task has finished; the first error.
  coord::Status Drain();

 private:
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;      // guarded by mu_
  Ticket submitted_ = 0;        // guarded by mu_
  Ticket finished_ = 0;         // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  coord::Status error_;         // guarded by mu_: the first failure
  const CommGroup group_;
  std::thread worker_;          // started last
};

}  // namespace gpt_rank::dist
