// The key-value store the ranks of one job rendezvous through (torch.distributed's
// Store): rank 0 hosts it (tcp_store.h), every rank connects to MASTER_ADDR:MASTER_PORT.
// Communicators exchange their addresses (gloo) or unique id (NCCL) through it.
// Keys are set once; Get waits until a key is set or the timeout passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpt_rank::dist {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  virtual coord::Status Set(const std::string& key, const std::string& value) = 0;
  // Waits until key is set. DeadlineExceeded names the key, the store's address and
  // how long it waited.
  virtual coord::StatusOr<std::string> Get(const std::string& key,
                                           std::chrono::milliseconds timeout) = 0;
  // Atomically adds delta to the integer stored at key (0 when unset); returns the sum.
  virtual coord::StatusOr<int64_t> Add(const std::string& key, int64_t delta) = 0;
  // Waits until every key is set.
  virtual coord::Status Wait(const std::vector<std::string>& keys,
                             std::chrono::milliseconds timeout) = 0;
  // "HOST:PORT", for messages.
  virtual std::string address() const = 0;
};

}  // namespace gpt_rank::dist
