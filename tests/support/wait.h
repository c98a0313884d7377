// Test support: waiting for something that happens on another thread or in
// another process. Tests poll with WaitUntil and a deadline, never with a bare
// sleep, so a fast machine does not wait and a slow one does not flake.
#pragma once

#include <chrono>
#include <cstdlib>
#include <thread>

namespace coord::testing {

// How much slower this build runs than a plain one: COORD_TEST_TIME_SCALE (set by
// scripts/sanitize.sh; sanitized code runs 2-10x slower), at least 1. Only bounds that
// are about speed (an "answered within N s" check) scale by it; deadlines for liveness
// are generous already.
inline double TimeScale() {
  const char* s = std::getenv("COORD_TEST_TIME_SCALE");
  const double v = s ? std::atof(s) : 1.0;
  return v > 1.0 ? v : 1.0;
}

// Calls `pred` every poll_ms until it returns true or timeout_ms have passed;
// returns its last value (it is called once more at the deadline). A larger
// poll_ms suits a predicate that is itself costly (runs a program, reads a file).
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms, int poll_ms = 5) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return pred();
}

}  // namespace coord::testing
