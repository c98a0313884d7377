// A Clock that moves only when a test says so: tests of timeouts, TTLs and
// heartbeats advance it instead of sleeping. Header-only so any test target can
// use it without a library. Thread-safe: the code under test reads it from its
// own threads while the test advances it.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/clock.h"

namespace coord {

class FakeClock final : public Clock {
 public:
  // Defaults far from 0, so "0 = unset" fields and negative ages stand out.
  explicit FakeClock(int64_t wall_ms = 1'700'000'000'000, int64_t mono_ms = 1'000'000)
      : wall_ms_(wall_ms), mono_ms_(mono_ms) {}

  int64_t WallMs() const override { return wall_ms_.load(); }
  int64_t MonoMs() const override { return mono_ms_.load(); }
  // Waiters re-read the clock this often (real ms) to see an Advance.
  int64_t MaxSleepMs() const override { return 2; }

  /// Both clocks move forward by ms (as real time passing does).
  void Advance(int64_t ms) {
    wall_ms_ += ms;
    mono_ms_ += ms;
  }
  /// The wall clock alone jumps (an NTP step); deadlines must not notice.
  void SetWallMs(int64_t wall_ms) { wall_ms_ = wall_ms; }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> mono_ms_;
};

}  // namespace coord
