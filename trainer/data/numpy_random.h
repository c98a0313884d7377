// numpy's legacy np.random.RandomState(seed).shuffle in C++, so Megatron's
// doc_idx / shuffle_idx orders come out identical: MT19937 seeded by
// init_genrand(seed) (std::mt19937 is specified to be exactly that generator),
// and shuffle's Fisher-Yates loop drawing with random_interval (numpy's
// legacy bounded integers: mask-and-reject). Verified against numpy in tests.
#pragma once

#include <cstdint>
#include <random>
#include <utility>

namespace trainer::data {

class NumpyRandomState {
 public:
  // RandomState(seed) for an integer seed in [0, 2^32): mt19937_seed(state, seed).
  explicit NumpyRandomState(uint32_t seed) : mt_(seed) {}

  uint32_t NextUint32() { return static_cast<uint32_t>(mt_()); }
  // mt19937_next64: two 32-bit draws, the first one the high half.
  uint64_t NextUint64() {
    const uint64_t hi = NextUint32();
    return (hi << 32) | NextUint32();
  }

  // random_interval(max): uniform in [0, max]. Draws under the smallest all-ones
  // mask >= max and rejects values above max; 32-bit draws while max fits in 32 bits.
  uint64_t RandomInterval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t value;
    if (max <= 0xFFFFFFFFull) {
      while ((value = (NextUint32() & mask)) > max) {
      }
    } else {
      while ((value = (NextUint64() & mask)) > max) {
      }
    }
    return value;
  }

  // RandomState.shuffle on a 1-D array: for i = n-1 down to 1, swap x[i] with
  // x[random_interval(i)]. The element type does not change the draws.
  template <typename T>
  void Shuffle(T* data, int64_t n) {
    for (int64_t i = n - 1; i >= 1; --i) {
      const auto j = static_cast<int64_t>(RandomInterval(static_cast<uint64_t>(i)));
      std::swap(data[i], data[j]);
    }
  }

 private:
  std::mt19937 mt_;
};

}  // namespace trainer::data
