// Detached supervisor start and handshake (see spawn.h). Runs in coord-agent.
#include "agent/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/clock.h"
#include "common/fs.h"

extern char** environ;

namespace coord::agent {

StatusOr<SpawnedSupervisor> SpawnSupervisor(const std::string& supervisor_path,
                                            const std::string& gen_dir) {
  std::string log_path = JoinPath(gen_dir, "supervisor.log");
  std::vector<std::string> args = {supervisor_path, "--dir", gen_dir, "--notify-fd", "3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  // The write end must not already be fd 3: a dup2 onto itself would leave
  // CLOEXEC set and the supervisor would start without its pipe.
  int write_end = fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
  close(fds[1]);
  if (write_end < 0) {
    int err = errno;
    close(fds[0]);
    return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", err);
  }
  // posix_spawn (vfork + exec inside glibc) instead of fork: no copy of this
  // large multi-threaded process's page tables, and no pthread_atfork handlers.
  // POSIX_SPAWN_SETSID gives the supervisor its own session, so signals to the
  // agent's process group or session never reach it; when the agent dies it is
  // re-parented to init (or the nearest subreaper) and keeps running.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_adddup2(&fa, write_end, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, supervisor_path.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(write_end);
  if (rc != 0) {
    close(fds[0]);
    return ErrnoStatus("start " + supervisor_path, rc);
  }
  return SpawnedSupervisor{pid, fds[0]};
}

void ReapIfOurChild(int pid) {
  // WNOHANG + a specific pid: ECHILD (adopted after a restart, not our child)
  // and "still running" are both fine.
  if (pid > 0) waitpid(pid, nullptr, WNOHANG);
}

LaunchAck WaitLaunchAck(int fd, int timeout_ms) {
  int64_t deadline = MonoMs() + timeout_ms;
  std::string line;
  LaunchAck result = LaunchAck::kTimeout;
  for (;;) {
    int64_t left = deadline - MonoMs();
    if (left <= 0) break;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result = LaunchAck::kDied;
      break;
    }
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos) {
      result = line.compare(0, 2, "ok") == 0 ? LaunchAck::kOk : LaunchAck::kFail;
      break;
    }
  }
  close(fd);
  return result;
}

}  // namespace coord::agent
