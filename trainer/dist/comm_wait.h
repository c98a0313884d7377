// The time the calling thread spent blocked in communication, by process group: what
// the training thread waited for its peers (in its own collectives, and for the
// reducer thread's buckets), as opposed to the reducer thread's collectives that
// overlap backward. The training loop reads its own thread's totals around an
// iteration: compute = forward-backward minus this wait (the straggler score).
// Thread-local: each thread adds to and reads only its own.
#pragma once

#include <chrono>
#include <cstdint>

namespace gpt_rank::dist {

enum class CommGroup { kTensor = 0, kData, kPipeline, kOther, kCount };

struct CommWait {
  int64_t ns[static_cast<int>(CommGroup::kCount)] = {};
  int64_t Total() const {
    int64_t t = 0;
    for (int64_t v : ns) t += v;
    return t;
  }
};

// This thread's running totals (never reset: callers take differences).
inline CommWait& ThisThreadCommWait() {
  thread_local CommWait wait;
  return wait;
}

// Adds the scope's duration to this thread's wait in `group`.
class ScopedCommWait {
 public:
  explicit ScopedCommWait(CommGroup group, bool active = true)
      : group_(group), active_(active), t0_(std::chrono::steady_clock::now()) {}
  ~ScopedCommWait() {
    if (!active_) return;
    ThisThreadCommWait().ns[static_cast<int>(group_)] +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                             t0_)
            .count();
  }
  ScopedCommWait(const ScopedCommWait&) = delete;
  ScopedCommWait& operator=(const ScopedCommWait&) = delete;

 private:
  CommGroup group_;
  bool active_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace gpt_rank::dist
