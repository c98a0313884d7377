// Fan-out of AgentEvents to Watch streams: stamps seq (increasing per agent
// incarnation), agent_id and time, and queues each event for every subscriber.
// Runs in coord-agent. Thread-safe (mu_); publishers may hold AgentService::mu_
// (lock order: AgentService::mu_ -> EventHub::mu_), so the hub never calls out.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "proto/agent.pb.h"

namespace coord::agent {

class EventHub {
 public:
  // A slow watcher may fall this far behind before its stream is ended (it then
  // re-watches and gets a fresh snapshot) instead of growing without bound.
  static constexpr size_t kMaxQueued = 100000;

  struct Subscription {
    std::deque<AgentEvent> queue;  // guarded by EventHub::mu_
    bool overflowed = false;       // guarded by EventHub::mu_
  };
  enum class Wait { kEvent, kTimeout, kClosed, kOverflow };

  // Events are stamped with `clock`'s wall time.
  explicit EventHub(std::string agent_id, std::shared_ptr<const Clock> clock = SystemClock())
      : agent_id_(std::move(agent_id)), clock_(std::move(clock)) {}

  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  // Stamps and queues `ev` for every subscriber.
  void Publish(AgentEvent ev);
  // Stamps an event for one stream only (the replayed snapshot).
  AgentEvent Stamp(AgentEvent ev);
  // Waits up to timeout_ms for the next event of `sub`.
  Wait Next(const std::shared_ptr<Subscription>& sub, int timeout_ms, AgentEvent* out);
  // Ends every Next() with kClosed (agent shutdown).
  void Close();

 private:
  AgentEvent StampLocked(AgentEvent ev);

  const std::string agent_id_;
  const std::shared_ptr<const Clock> clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;                                 // guarded by mu_
  bool closed_ = false;                              // guarded by mu_
  std::vector<std::shared_ptr<Subscription>> subs_;  // guarded by mu_
};

}  // namespace coord::agent
