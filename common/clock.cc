// Clock helpers.
#include "common/clock.h"

#include <time.h>

#include <cstdio>

namespace coord {

static int64_t ClockMs(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t WallMs() { return ClockMs(CLOCK_REALTIME); }
int64_t MonoMs() { return ClockMs(CLOCK_MONOTONIC); }

std::shared_ptr<const Clock> SystemClock() {
  static const std::shared_ptr<const Clock> clock = std::make_shared<const RealClock>();
  return clock;
}

std::string FormatSeconds(std::chrono::duration<double> d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", d.count());
  return buf;
}

}  // namespace coord
