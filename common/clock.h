// Wall and monotonic milliseconds: wall for records people read (journal,
// status), monotonic for every deadline and duration.
#pragma once

#include <cstdint>

namespace coord {

int64_t WallMs();
int64_t MonoMs();

}  // namespace coord
