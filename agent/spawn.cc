// Detached supervisor start and handshake (see spawn.h). Runs in coord-agent.
// The agent is multi-threaded: between fork and exec only async-signal-safe
// calls are made, on strings prepared before fork.
#include "agent/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/clock.h"
#include "common/fs.h"

extern char** environ;

namespace coord::agent {
namespace {

[[noreturn]] void ExecSupervisor(const char* path, char* const* argv, const char* log_path,
                                 int notify_fd) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int in = open("/dev/null", O_RDONLY);
  int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || log < 0) _exit(127);
  dup2(in, 0);
  dup2(log, 1);
  dup2(log, 2);
  if (notify_fd == 3) {
    fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep CLOEXEC
  } else {
    dup2(notify_fd, 3);
  }
  execve(path, argv, environ);
  _exit(127);
}

}  // namespace

StatusOr<int> SpawnSupervisor(const std::string& supervisor_path, const std::string& gen_dir) {
  std::string log_path = JoinPath(gen_dir, "supervisor.log");
  std::string dir_arg = gen_dir;
  std::vector<std::string> args = {supervisor_path, "--dir", dir_arg, "--notify-fd", "3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    // Intermediate child: new session, fork the supervisor, exit, so the
    // supervisor is re-parented away from us right away and is never our zombie.
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    ExecSupervisor(supervisor_path.c_str(), argv.data(), log_path.c_str(), fds[1]);
  }
  close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    close(fds[0]);
    return Internal("could not fork the supervisor for " + gen_dir);
  }
  return fds[0];
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
