// Port reservations (see port_reservations.h). Runs in coord-agent.
#include "agent/port_reservations.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/clock.h"

namespace coord::agent {

PortReservations::~PortReservations() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& h : held_) close(h.fd);
  held_.clear();
}

StatusOr<int> PortReservations::Reserve(const std::string& job_id, int ttl_ms) {
  ExpireOld();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("reserve a TCP port", err);
  }
  int port = ntohs(addr.sin_port);
  std::lock_guard<std::mutex> lock(mu_);
  held_.push_back({job_id, port, fd, clock_->MonoMs() + (ttl_ms > 0 ? ttl_ms : default_ttl_ms_)});
  return port;
}

bool PortReservations::Release(const std::string& job_id, int port) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = held_.begin(); it != held_.end(); ++it) {
    if (it->port == port && it->job_id == job_id) {
      close(it->fd);
      held_.erase(it);
      return true;
    }
  }
  return false;
}

int PortReservations::ExpireOld() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_->MonoMs();
  int n = 0;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->expires_ms <= now) {
      close(it->fd);
      it = held_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

int PortReservations::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(held_.size());
}

}  // namespace coord::agent
