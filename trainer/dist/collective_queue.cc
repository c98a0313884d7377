// Collectives in submission order on their own thread (collective_queue.h).
#include "trainer/dist/collective_queue.h"

#include <utility>

namespace gpt_rank::dist {

CollectiveQueue::CollectiveQueue(bool threaded, CommGroup group) : group_(group) {
  if (threaded) worker_ = std::thread([this] { WorkerLoop(); });
}

CollectiveQueue::~CollectiveQueue() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_ == submitted_; });
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

CollectiveQueue::Ticket CollectiveQueue::Submit(Task task) {
  std::unique_lock<std::mutex> lock(mu_);
  const Ticket ticket = ++submitted_;
  if (worker_.joinable()) {
    queue_.push_back(std::move(task));
    lock.unlock();
    cv_.notify_all();
    return ticket;
  }
  if (error_.ok()) {
    lock.unlock();
    coord::Status s = task();
    lock.lock();
    if (!s.ok() && error_.ok()) error_ = std::move(s);
  }
  finished_ = ticket;
  return ticket;
}

coord::Status CollectiveQueue::Wait(Ticket ticket) {
  ScopedCommWait wait(group_, worker_.joinable());
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return finished_ >= ticket; });
  return error_;
}

coord::Status CollectiveQueue::Drain() {
  ScopedCommWait wait(group_, worker_.joinable());
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_ == submitted_; });
  return error_;
}

void CollectiveQueue::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_, nothing left
    Task task = std::move(queue_.front());
    queue_.pop_front();
    const bool skip = !error_.ok();  // after a failure the rest is moot
    lock.unlock();
    coord::Status s = skip ? coord::Status::Ok() : task();
    task = nullptr;  // release what it captured before the waiters wake
    lock.lock();
    if (!s.ok() && error_.ok()) error_ = std::move(s);
    ++finished_;
    cv_.notify_all();
  }
}

}  // namespace gpt_rank::dist
