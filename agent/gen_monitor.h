// Event source for coord-agent: one thread with epoll over an inotify fd (new
// records renamed into generation dirs by supervisors), pidfds of supervisors
// (a supervisor's death, even one adopted after an agent restart, which is not
// our child), and a periodic tick. Latency is that of inotify: no file polling.
// The GenWatcher AgentService uses unless a test injects another. Thread-safe: Watch*/Unwatch* may
// be called from any thread. Callbacks run on the monitor thread with no monitor lock held (lock
// order: callers' locks -> GenMonitor::mu_; callbacks may take the callers' locks).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/gen_watcher.h"
#include "common/clock.h"
#include "common/status.h"

namespace coord::agent {

class GenMonitor final : public GenWatcher {
 public:
  // on_overflow: the inotify queue overflowed. The tick follows `clock` (its
  // epoll waits are real time, so a fake clock ticks at the first wake after it
  // has been advanced past the tick).
  static StatusOr<std::unique_ptr<GenWatcher>> Create(Callbacks callbacks, int tick_ms,
                                                      std::shared_ptr<const Clock> clock);
  ~GenMonitor() override;  // Stop()

  Status WatchDir(uint64_t key, const std::string& dir) override;
  void UnwatchDir(uint64_t key) override;
  // NOT_FOUND when the process is gone or its start time does not match.
  Status WatchPid(uint64_t key, int pid, uint64_t start_ticks) override;
  void UnwatchPid(uint64_t key) override;
  // Ends the thread; idempotent. Callbacks are not running once it returns.
  void Stop() override;

 private:
  GenMonitor(Callbacks callbacks, int tick_ms, std::shared_ptr<const Clock> clock)
      : cb_(std::move(callbacks)), tick_ms_(tick_ms), clock_(std::move(clock)) {}
  void Loop();
  void HandleInotify();

  Callbacks cb_;
  const int tick_ms_;
  const std::shared_ptr<const Clock> clock_;
  int epoll_fd_ = -1;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the loop
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<int, uint64_t> wd_to_key_;     // guarded by mu_
  std::map<uint64_t, int> key_to_wd_;     // guarded by mu_
  std::map<int, uint64_t> pidfd_to_key_;  // guarded by mu_
  std::map<uint64_t, int> key_to_pidfd_;  // guarded by mu_
};

}  // namespace coord::agent
