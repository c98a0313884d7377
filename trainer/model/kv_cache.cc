// KvCache sizing and checks (see kv_cache.h).
#include "trainer/model/kv_cache.h"

#include <string>

#include "trainer/model/gpt_params.h"

namespace trainer {

double KvCache::Bytes(const GptConfig& config, int capacity) {
  return 2.0 * config.num_layers * config.kv_heads() * static_cast<double>(capacity) *
         config.head_size() * sizeof(float);
}

coord::StatusOr<KvCache> KvCache::Create(const GptConfig& config, int capacity) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  if (capacity <= 0 || capacity > config.max_position_embeddings) {
    return coord::InvalidArgument("KV cache: " + std::to_string(capacity) +
                                  " positions outside the model's context [1, " +
                                  std::to_string(config.max_position_embeddings) + "]");
  }
  const double bytes = Bytes(config, capacity);
  if (bytes > kMaxKvCacheBytes) {
    return coord::InvalidArgument(
        "KV cache: " + std::to_string(capacity) + " positions of " +
        std::to_string(config.num_layers) + " layers x " + std::to_string(config.kv_heads()) +
        " KV heads x " + std::to_string(config.head_size()) + " would take " +
        std::to_string(static_cast<long long>(bytes / (1 << 20))) + " MiB, over the " +
        std::to_string(static_cast<long long>(kMaxKvCacheBytes / (1 << 20))) + " MiB limit");
  }
  const size_t layer_floats =
      static_cast<size_t>(config.kv_heads()) * capacity * config.head_size();
  return KvCache(capacity, layer_floats, 2 * layer_floats * config.num_layers);
}

}  // namespace trainer
