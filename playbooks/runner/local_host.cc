// LocalHost (see local_host.h): posix_spawn rather than fork, because the runner
// calls Run from many threads at once and posix_spawn leaves no window in which a
// forked child of a multi-threaded process runs arbitrary code. All our pipes are
// O_CLOEXEC, so one host's command never inherits another's pipe ends (which
// would hold their EOF back).
#include "playbooks/runner/local_host.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/fs.h"

extern char** environ;

namespace coord::playbooks {

namespace {

using Clock = std::chrono::steady_clock;

// Owns the read ends and the child until it is reaped, so every early return
// leaves no zombie and no open descriptor.
struct Child {
  pid_t pid = -1;
  int fds[2] = {-1, -1};  // stdout, stderr read ends
  ~Child() {
    for (int& fd : fds) {
      if (fd >= 0) close(fd);
    }
    if (pid > 0) {
      kill(-pid, SIGKILL);
      int st;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
};

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? abbrev : std::to_string(sig);
}

StatusOr<pid_t> Spawn(const std::string& command, int out_w, int err_w) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w, 2);
  // Own process group (pgid = pid) so the deadline can kill the whole tree;
  // default signal dispositions and an empty mask, whatever the runner set.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus("spawn /bin/sh", rc);
  return pid;
}

}  // namespace

StatusOr<CommandResult> LocalHost::Run(const std::string& command,
                                       std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    return ErrnoStatus("pipe", e);
  }
  Child child;
  child.fds[0] = out[0];
  child.fds[1] = err[0];
  StatusOr<pid_t> pid = Spawn(command, out[1], err[1]);
  close(out[1]);  // the child has its copies; ours would hold EOF back
  close(err[1]);
  if (!pid.ok()) return pid.status();
  child.pid = *pid;

  CommandResult result;
  std::string* sinks[2] = {&result.stdout_text, &result.stderr_text};
  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(std::min<long>(left.count(), 1000000)) : 0;
  };
  auto timed_out = [&] {
    char secs[32];
    snprintf(secs, sizeof(secs), "%g", static_cast<double>(timeout.count()) / 1000.0);
    return DeadlineExceeded(std::string("the command did not finish within ") + secs +
                            " s; its process group was killed");
  };
  char buf[65536];
  while (child.fds[0] >= 0 || child.fds[1] >= 0) {
    int wait_ms = remaining_ms();
    if (wait_ms == 0) return timed_out();  // ~Child kills the group and reaps
    pollfd pfds[2];
    int n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (child.fds[i] < 0) continue;
      pfds[n] = {child.fds[i], POLLIN, 0};
      which[n++] = i;
    }
    int rc = poll(pfds, n, wait_ms);
    if (rc < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
    for (int k = 0; rc > 0 && k < n; ++k) {
      if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int i = which[k];
      ssize_t got = read(child.fds[i], buf, sizeof(buf));
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(child.fds[i]);
        child.fds[i] = -1;
      }
    }
  }
  // Both pipes are closed; the shell may still be running (it closed them
  // itself), so reaping also respects the deadline.
  int st = 0;
  for (;;) {
    pid_t r = waitpid(child.pid, &st, WNOHANG);
    if (r == child.pid) break;
    if (r < 0 && errno != EINTR) return ErrnoStatus("waitpid", errno);
    if (remaining_ms() == 0) return timed_out();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  child.pid = -1;  // reaped: ~Child must not signal a recycled pid
  if (WIFEXITED(st)) {
    result.exit_status = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    result.exit_signal = SignalName(WTERMSIG(st));
  }
  return result;
}

Status LocalHost::Upload(const std::string& content, const std::string& remote_path, int mode,
                         std::chrono::milliseconds timeout) {
  if (mode < 0 || mode > 07777) return InvalidArgument("upload " + remote_path + ": bad mode");
  static std::atomic<unsigned long> counter{0};
  size_t slash = remote_path.find_last_of('/');
  std::string base = slash == std::string::npos ? remote_path : remote_path.substr(slash + 1);
  std::string tmp =
      JoinPath(Dirname(remote_path), "." + base + ".coord-tmp." + std::to_string(getpid()) + "." +
                                         std::to_string(counter++));
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("upload " + remote_path + ": create " + tmp, errno);
  Status st = WriteAll(fd, content, tmp);
  // fchmod, not open's mode: the umask must not strip bits the playbook asked for.
  if (st.ok() && fchmod(fd, static_cast<mode_t>(mode)) != 0)
    st = ErrnoStatus("chmod " + tmp, errno);
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus("fsync " + tmp, errno);
  close(fd);
  if (st.ok() && rename(tmp.c_str(), remote_path.c_str()) != 0) {
    st = ErrnoStatus("rename " + tmp + " to " + remote_path, errno);
  }
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

}  // namespace coord::playbooks
