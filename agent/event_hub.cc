// Watch event fan-out (see event_hub.h). Runs in coord-agent.
#include "agent/event_hub.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"

namespace coord::agent {

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe() {
  auto sub = std::make_shared<Subscription>();
  std::lock_guard<std::mutex> lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
}

AgentEvent EventHub::StampLocked(AgentEvent ev) {
  ev.set_seq(++seq_);
  ev.set_agent_id(agent_id_);
  ev.set_time_ms(clock_->WallMs());
  return ev;
}

AgentEvent EventHub::Stamp(AgentEvent ev) {
  std::lock_guard<std::mutex> lock(mu_);
  return StampLocked(std::move(ev));
}

void EventHub::Publish(AgentEvent ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    AgentEvent stamped = StampLocked(std::move(ev));
    for (auto& sub : subs_) {
      if (sub->queue.size() >= kMaxQueued) {
        sub->overflowed = true;
        continue;
      }
      sub->queue.push_back(stamped);
    }
  }
  cv_.notify_all();
}

EventHub::Wait EventHub::Next(const std::shared_ptr<Subscription>& sub, int timeout_ms,
                              AgentEvent* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return closed_ || sub->overflowed || !sub->queue.empty(); });
  if (closed_) return Wait::kClosed;
  if (sub->overflowed) return Wait::kOverflow;
  if (sub->queue.empty()) return Wait::kTimeout;
  *out = std::move(sub->queue.front());
  sub->queue.pop_front();
  return Wait::kEvent;
}

void EventHub::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace coord::agent
