// The key/value cache of generation: for every layer the K and V heads of every
// position seen so far, so a decode step runs one token through the model instead of
// the whole prefix. Holds KV heads (num_query_groups with grouped-query attention),
// not query heads. Rank 0 only (inference is one process, the whole model, fp32 CPU).
//
// Memory is 2 L KV S HS floats for S positions; S comes from the request (prompt +
// new tokens) and is checked against the model's context and a hard byte limit
// before anything is allocated, so a bad request or config is an error, not an OOM.
// Not thread-safe: one generation loop owns it.
#pragma once

#include <cstddef>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// The most a cache may take (a Qwen2.5-7B cache of its full 32768 positions is 3.5
// GiB; anything near this limit is a mistake, not a plan).
inline constexpr double kMaxKvCacheBytes = 32.0 * (1ull << 30);

class KvCache {
 public:
  // A cache of `capacity` positions for `config` (valid) : 0 < capacity <=
  // max_position_embeddings and 2 L KV capacity HS * 4 bytes <= kMaxKvCacheBytes.
  static coord::StatusOr<KvCache> Create(const GptConfig& config, int capacity);
  // Bytes a cache of `capacity` positions needs (double: no overflow for any config).
  static double Bytes(const GptConfig& config, int capacity);

  int capacity() const { return capacity_; }  // S
  int length() const { return length_; }      // positions filled: 0 .. length-1
  // Layer l's keys / values (KV, S, HS).
  float* k(int l) { return data_.data() + static_cast<size_t>(2 * l) * layer_floats_; }
  float* v(int l) { return data_.data() + static_cast<size_t>(2 * l + 1) * layer_floats_; }
  const float* k(int l) const { return data_.data() + static_cast<size_t>(2 * l) * layer_floats_; }
  const float* v(int l) const {
    return data_.data() + static_cast<size_t>(2 * l + 1) * layer_floats_;
  }
  // After every layer appended n positions at length().
  void Advance(int n) { length_ += n; }
  void Clear() { length_ = 0; }  // the stale rows are overwritten before they are read

 private:
  KvCache(int capacity, size_t layer_floats, size_t total)
      : capacity_(capacity), layer_floats_(layer_floats), data_(total, 0.0f) {}
  int capacity_ = 0;
  int length_ = 0;
  size_t layer_floats_ = 0;  // KV S HS
  std::vector<float> data_;  // (L, 2, KV, S, HS): per layer keys then values
};

}  // namespace trainer
