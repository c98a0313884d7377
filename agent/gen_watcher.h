// What AgentService needs to hear about its generations: a record renamed into a
// generation dir, a supervisor's death, and a periodic tick. GenMonitor (inotify
// + pidfds + a thread) is the real one; unit tests inject a fake that delivers
// the same callbacks when the test says so. Watch*/Unwatch* are thread-safe and
// may be called with the caller's locks held; callbacks run with no watcher lock
// held (lock order: callers' locks -> the watcher's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace coord::agent {

class GenWatcher {
 public:
  struct Callbacks {
    std::function<void(uint64_t key, const std::string& name)> on_file;  // record renamed in
    std::function<void(uint64_t key)> on_pid_exit;                       // supervisor ended
    std::function<void()> on_overflow;  // events were lost: resync everything
    std::function<void()> on_tick;
  };

  virtual ~GenWatcher() = default;
  virtual Status WatchDir(uint64_t key, const std::string& dir) = 0;
  virtual void UnwatchDir(uint64_t key) = 0;
  /// NOT_FOUND when the process is gone or its start time does not match.
  virtual Status WatchPid(uint64_t key, int pid, uint64_t start_ticks) = 0;
  virtual void UnwatchPid(uint64_t key) = 0;
  /// No callback runs once it returns; idempotent.
  virtual void Stop() = 0;
};

/// Makes the watcher AgentService starts in Init(); on_tick every tick_ms of `clock`.
using GenWatcherFactory = std::function<StatusOr<std::unique_ptr<GenWatcher>>(
    GenWatcher::Callbacks callbacks, int tick_ms, std::shared_ptr<const Clock> clock)>;

}  // namespace coord::agent
