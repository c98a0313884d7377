// Wall and monotonic milliseconds: wall for records people read (journal,
// status), monotonic for every deadline and duration.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace coord {

int64_t WallMs();
int64_t MonoMs();

// "2.5 s": a duration in a message (timeouts, time waited).
std::string FormatSeconds(std::chrono::duration<double> d);

}  // namespace coord
