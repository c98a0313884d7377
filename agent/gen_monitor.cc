// inotify + pidfd event loop (see gen_monitor.h). Runs in coord-agent.
#include "agent/gen_monitor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "agent/proc_scan.h"
#include "common/clock.h"
#include "common/logging.h"

namespace coord::agent {
namespace {

constexpr uint64_t kInotifyTag = ~0ull;
constexpr uint64_t kWakeTag = ~0ull - 1;

}  // namespace

StatusOr<std::unique_ptr<GenWatcher>> GenMonitor::Create(Callbacks callbacks, int tick_ms,
                                                         std::shared_ptr<const Clock> clock) {
  std::unique_ptr<GenMonitor> m(new GenMonitor(std::move(callbacks), tick_ms, std::move(clock)));
  m->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  m->inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  m->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m->epoll_fd_ < 0 || m->inotify_fd_ < 0 || m->wake_fd_ < 0) {
    return ErrnoStatus("set up epoll/inotify", errno);
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kInotifyTag;
  epoll_ctl(m->epoll_fd_, EPOLL_CTL_ADD, m->inotify_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(m->epoll_fd_, EPOLL_CTL_ADD, m->wake_fd_, &ev);
  m->thread_ = std::thread([p = m.get()] { p->Loop(); });
  return std::unique_ptr<GenWatcher>(std::move(m));
}

GenMonitor::~GenMonitor() {
  Stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [fd, key] : pidfd_to_key_) close(fd);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void GenMonitor::Stop() {
  if (stop_.exchange(true)) {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    return;
  }
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  if (thread_.joinable()) thread_.join();
}

Status GenMonitor::WatchDir(uint64_t key, const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  // IN_MOVED_TO: every record is written to a temp name and renamed in.
  int wd = inotify_add_watch(inotify_fd_, dir.c_str(), IN_MOVED_TO | IN_ONLYDIR);
  if (wd < 0) return ErrnoStatus("inotify watch " + dir, errno);
  wd_to_key_[wd] = key;
  key_to_wd_[key] = wd;
  return Status::Ok();
}

void GenMonitor::UnwatchDir(uint64_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = key_to_wd_.find(key);
  if (it == key_to_wd_.end()) return;
  inotify_rm_watch(inotify_fd_, it->second);
  wd_to_key_.erase(it->second);
  key_to_wd_.erase(it);
}

Status GenMonitor::WatchPid(uint64_t key, int pid, uint64_t start_ticks) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return ErrnoStatus("pidfd_open " + std::to_string(pid), errno);
  // Checked after opening: the pidfd now pins this exact process, so a match
  // here cannot be a recycled pid.
  if (!ProcAlive(pid, start_ticks)) {
    close(fd);
    return NotFound("process " + std::to_string(pid) + " is gone");
  }
  std::lock_guard<std::mutex> lock(mu_);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(fd);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("epoll_ctl", err);
  }
  pidfd_to_key_[fd] = key;
  key_to_pidfd_[key] = fd;
  return Status::Ok();
}

void GenMonitor::UnwatchPid(uint64_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = key_to_pidfd_.find(key);
  if (it == key_to_pidfd_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
  close(it->second);
  pidfd_to_key_.erase(it->second);
  key_to_pidfd_.erase(it);
}

void GenMonitor::HandleInotify() {
  alignas(struct inotify_event) char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(inotify_fd_, buf, sizeof(buf));
    if (n <= 0) return;  // EAGAIN: drained
    std::vector<std::pair<uint64_t, std::string>> files;
    bool overflow = false;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) overflow = true;
      if (ev->len == 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      auto it = wd_to_key_.find(ev->wd);
      if (it != wd_to_key_.end()) files.emplace_back(it->second, ev->name);
    }
    for (auto& [key, name] : files) cb_.on_file(key, name);
    if (overflow) cb_.on_overflow();
  }
}

void GenMonitor::Loop() {
  int64_t next_tick = clock_->MonoMs() + tick_ms_;
  while (!stop_.load()) {
    struct epoll_event evs[32];
    int timeout = static_cast<int>(std::max<int64_t>(0, next_tick - clock_->MonoMs()));
    int n = epoll_wait(epoll_fd_, evs, 32, timeout);
    if (n < 0 && errno != EINTR) {
      LOG_ERROR << "epoll_wait: " << errno;
      break;
    }
    for (int i = 0; i < n && !stop_.load(); ++i) {
      uint64_t tag = evs[i].data.u64;
      if (tag == kWakeTag) continue;
      if (tag == kInotifyTag) {
        HandleInotify();
        continue;
      }
      uint64_t key = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = pidfd_to_key_.find(static_cast<int>(tag));
        if (it == pidfd_to_key_.end()) continue;
        key = it->second;
      }
      UnwatchPid(key);  // one-shot: the process is gone
      cb_.on_pid_exit(key);
    }
    if (clock_->MonoMs() >= next_tick) {
      if (!stop_.load() && cb_.on_tick) cb_.on_tick();
      next_tick = clock_->MonoMs() + tick_ms_;
    }
  }
}

}  // namespace coord::agent
