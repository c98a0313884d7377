// ReservePort: TCP ports held bound AND listening (a listening socket cannot be
// bound by anyone else, SO_REUSEADDR or not) until the job's Launch uses the
// port as MASTER_PORT or the reservation expires. Runs in coord-agent.
// Thread-safe: every method takes mu_.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace coord::agent {

class PortReservations {
 public:
  // TTLs run on `clock`'s monotonic time.
  explicit PortReservations(int default_ttl_ms = 60000,
                            std::shared_ptr<const Clock> clock = SystemClock())
      : default_ttl_ms_(default_ttl_ms), clock_(std::move(clock)) {}
  ~PortReservations();
  PortReservations(const PortReservations&) = delete;
  PortReservations& operator=(const PortReservations&) = delete;

  // Binds 0.0.0.0:0, listens, keeps the fd; returns the port. ttl_ms <= 0: default.
  StatusOr<int> Reserve(const std::string& job_id, int ttl_ms);
  // Closes the reservation of `port` for `job_id`; false when there was none.
  bool Release(const std::string& job_id, int port);
  // Closes reservations past their ttl; returns how many.
  int ExpireOld();
  int size() const;

 private:
  struct Held {
    std::string job_id;
    int port = 0;
    int fd = -1;
    int64_t expires_ms = 0;  // clock_->MonoMs()
  };
  const int default_ttl_ms_;
  const std::shared_ptr<const Clock> clock_;
  mutable std::mutex mu_;
  std::vector<Held> held_;  // guarded by mu_
};

}  // namespace coord::agent
