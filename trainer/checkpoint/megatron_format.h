// Internal to trainer/checkpoint: the tensor file's layout and the helpers that the
// writer (megatron_checkpoint.cc) and the reader (megatron_checkpoint_load.cc) share.
// The format itself is described in megatron_checkpoint.h.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

// XXH64_state_t on the stack (its layout is fixed within a libxxhash version).
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/status.h"

namespace trainer {

constexpr char kMagic[8] = {'G', 'P', 'T', 'R', 'C', 'K', 'P', 'T'};
constexpr char kEndMagic[8] = {'G', 'P', 'T', 'R', 'E', 'N', 'D', '\0'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kNumTensors = 3;
constexpr size_t kHeaderBytes = 64, kTrailerBytes = 16;
constexpr char kTensorFile[] = "model_optim_rng.bin";
constexpr char kStateFile[] = "train_state.json";
constexpr char kManifestFile[] = "manifest.json";

// Streaming XXH64 (libxxhash): one state follows a tensor file through its write or read.
class Xxh64State {
 public:
  explicit Xxh64State(uint64_t seed = 0) { XXH64_reset(&state_, seed); }
  void Update(const void* data, size_t size) { XXH64_update(&state_, data, size); }
  uint64_t Digest() const { return XXH64_digest(&state_); }

 private:
  XXH64_state_t state_;
};

inline uint64_t Read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // little-endian hosts only (x86-64, aarch64)
  return v;
}
inline uint32_t Read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline std::string Hex64(uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof(s), "%016" PRIx64, v);
  return s;
}

// errno -> Status, with ENOSPC/EDQUOT as ResourceExhausted so callers can tell "disk
// full" from "bug".
coord::Status CheckpointIoError(const std::string& what, int err);

}  // namespace trainer
