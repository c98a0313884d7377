// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11), the generator
// cuRAND and PyTorch's CUDA dropout use. A value is a pure function of (key, counter),
// so dropout masks and init draws are reproducible, resumable at any step and
// recomputable in backward (checkpoint_activations) without storing them.
#pragma once

#include <cmath>
#include <cstdint>

// Host and device: the CUDA kernels draw the same masks as the CPU reference.
#ifdef __CUDACC__
#define COORD_HOST_DEVICE __host__ __device__
#else
#define COORD_HOST_DEVICE
#endif

namespace trainer {

struct Philox4x32 {
  uint32_t v[4];
};

// One Philox4x32-10 block: 4 independent uint32 draws for counter (c0..c3), key (k0,k1).
COORD_HOST_DEVICE inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2,
                                                  uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// A stream of random numbers: element i of stream `stream` under `seed`.
// Element i uses word i%4 of block i/4, so a kernel can draw 4 at a time.
struct RngStream {
  uint64_t seed = 0;
  uint64_t stream = 0;

  COORD_HOST_DEVICE Philox4x32 block(uint64_t block_index) const {
    return philox4x32_10(static_cast<uint32_t>(block_index),
                         static_cast<uint32_t>(block_index >> 32), static_cast<uint32_t>(stream),
                         static_cast<uint32_t>(stream >> 32), static_cast<uint32_t>(seed),
                         static_cast<uint32_t>(seed >> 32));
  }
  COORD_HOST_DEVICE uint32_t u32(uint64_t i) const { return block(i >> 2).v[i & 3]; }
  // Uniform in [0, 1) with 24 random bits (exactly representable in fp32).
  COORD_HOST_DEVICE float uniform(uint64_t i) const {
    return static_cast<float>(u32(i) >> 8) * 0x1.0p-24f;
  }
  // Standard normal number i: Box-Muller on the words of Philox block i (53-bit u1,
  // 32-bit u2), in double so it is reproducible; one block per draw, not four.
  float normal(uint64_t i) const {
    Philox4x32 b = block(i);
    uint64_t a = (static_cast<uint64_t>(b.v[0]) << 21) ^ b.v[1];                  // 53-ish bits
    double u1 = (static_cast<double>(a & ((1ull << 53) - 1)) + 1.0) * 0x1.0p-53;  // (0,1]
    double u2 = static_cast<double>(b.v[2]) * 0x1.0p-32;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

// Dropout streams are per sample: the stream of row b of a batch is `first`'s stream
// plus b * kSampleStreamStride, where `first` encodes the batch's first global sample
// (GptModel::DropoutRng). A sample then draws the same mask whichever rank, micro-batch
// or row it lands in, so data-parallel training matches one process exactly.
inline constexpr uint64_t kSampleStreamStride = uint64_t{1} << 24;
COORD_HOST_DEVICE inline RngStream SampleStream(const RngStream& first, int64_t b) {
  return {first.seed, first.stream + static_cast<uint64_t>(b) * kSampleStreamStride};
}

}  // namespace trainer
