// Wall and monotonic milliseconds: wall for records people read (journal,
// status), monotonic for every deadline and duration. Code that waits on time
// takes a `Clock` (injected; RealClock in production, tests/support/FakeClock in
// tests that advance time instead of sleeping); the free functions are the
// machine's clocks for code that always runs in real time (the supervisor, kill
// grace periods, poll() deadlines).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace coord {

int64_t WallMs();
int64_t MonoMs();

// Time as a daemon's logic sees it. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Milliseconds since the epoch (CLOCK_REALTIME): for timestamps people read.
  virtual int64_t WallMs() const = 0;
  /// Milliseconds on a clock that never jumps (CLOCK_MONOTONIC): for deadlines.
  virtual int64_t MonoMs() const = 0;
  /// How long (real ms) a thread may sleep before it must read this clock again. A
  /// fake clock moves without waking anyone, so its waiters poll; the real one wakes
  /// them at their deadline.
  virtual int64_t MaxSleepMs() const { return INT64_MAX; }
};

// The machine's clocks (WallMs()/MonoMs() above).
class RealClock final : public Clock {
 public:
  int64_t WallMs() const override { return coord::WallMs(); }
  int64_t MonoMs() const override { return coord::MonoMs(); }
};

/// One shared RealClock: the default wherever an options struct leaves its clock null.
std::shared_ptr<const Clock> SystemClock();

// "2.5 s": a duration in a message (timeouts, time waited).
std::string FormatSeconds(std::chrono::duration<double> d);

}  // namespace coord
