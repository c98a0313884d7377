// RankSpawner (see rank_spawn.h).
#include "agent/rank_spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "agent/state_dir.h"

namespace coord::agent {

namespace {

// Syscall wrappers only need a few KiB; the rest is for a sanitizer's interceptors.
// Pages are touched only as used.
constexpr std::size_t kChildStackBytes = 256 * 1024;

// rt_sigaction(2) directly: glibc's sigaction() refuses signals 32 and 33 (its own
// internal ones), yet a static glibc, like coord-supervisor's, runs with them ignored,
// and an ignored signal survives exec. The handler comes first in the kernel's struct
// on every architecture, and all-zero is SIG_DFL with no flags and an empty mask.
struct KernelSigaction {
  void* handler;
  unsigned long rest[3];
};
constexpr unsigned long kKernelSigsetBytes = 8;

bool IsDefault(int sig) {
  KernelSigaction old = {};
  return syscall(SYS_rt_sigaction, sig, nullptr, &old, kKernelSigsetBytes) != 0 ||
         old.handler == nullptr;
}

struct ChildArgs {
  const RankExec* exec;
  const int* reset_signals;
  std::size_t num_reset;
  // Written by the child (in our memory) when a step fails; read after clone returns.
  volatile int stage;
  volatile int err;
};

// exit_group itself, not _exit(): a sanitizer intercepts _exit to run its exit-time
// checks (leaks, reports), which must not run in a child that shares our memory.
[[noreturn]] void ChildFail(ChildArgs* args, SpawnStage stage, int err) {
  args->err = err;
  args->stage = static_cast<int>(stage);
  for (;;) syscall(SYS_exit_group, 127);
}

// Runs in the child on its own stack, sharing our memory and our thread's TLS
// until execve. Nothing here may allocate or take a lock. Not instrumented: a
// sanitizer's bookkeeping from here would be filed under the suspended parent.
__attribute__((no_sanitize("address", "thread"))) int ChildMain(void* arg) {
  auto* args = static_cast<ChildArgs*>(arg);
  const RankExec& e = *args->exec;
  // Signals are blocked (the parent blocked them before clone). Ignored signals
  // would survive exec; handlers would not, but must not run in our memory first.
  const KernelSigaction dfl = {};
  for (std::size_t i = 0; i < args->num_reset; ++i) {
    syscall(SYS_rt_sigaction, args->reset_signals[i], &dfl, nullptr, kKernelSigsetBytes);
  }
  setsid();  // own session and process group: kill(-pid) reaches the whole rank
  if (e.cgroup_procs[0] != '\0') {
    int fd = open(e.cgroup_procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) ChildFail(args, SpawnStage::kCgroup, errno);
    close(fd);
  }
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = open(e.out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  int err = open(e.err_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  // Progress records go to their own file on kProgressFd (COORD_PROGRESS_FD).
  int progress = open(e.progress_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (in < 0 || out < 0 || err < 0 || progress < 0) ChildFail(args, SpawnStage::kStdio, errno);
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
    ChildFail(args, SpawnStage::kStdio, errno);
  }
  // dup2 onto itself keeps CLOEXEC, so the descriptor is moved off kProgressFd first.
  if (progress == kProgressFd) progress = fcntl(progress, F_DUPFD_CLOEXEC, kProgressFd + 1);
  if (progress < 0 || dup2(progress, kProgressFd) < 0) ChildFail(args, SpawnStage::kStdio, errno);
  if (chdir(e.workdir) != 0) ChildFail(args, SpawnStage::kChdir, errno);
  // Nothing of the supervisor's leaks into the rank.
  syscall(SYS_close_range, static_cast<unsigned>(kProgressFd) + 1, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(e.exe, e.argv, e.envp);
  ChildFail(args, SpawnStage::kExec, errno);
}

}  // namespace

const char* SpawnStageName(SpawnStage stage) {
  switch (stage) {
    case SpawnStage::kNone:
      return "started";
    case SpawnStage::kClone:
      return "clone";
    case SpawnStage::kCgroup:
      return "join cgroup";
    case SpawnStage::kStdio:
      return "open stdio";
    case SpawnStage::kChdir:
      return "chdir";
    case SpawnStage::kExec:
      return "exec";
  }
  return "?";
}

RankSpawner::RankSpawner() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP && !IsDefault(sig)) reset_signals_.push_back(sig);
  }
  void* stack = mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (stack == MAP_FAILED) return;
  // The lowest page is a guard: an overflow faults instead of writing past the map.
  mprotect(stack, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)), PROT_NONE);
  stack_ = stack;
  stack_size_ = kChildStackBytes;
}

RankSpawner::~RankSpawner() {
  if (stack_ != nullptr) munmap(stack_, stack_size_);
}

SpawnResult RankSpawner::Spawn(const RankExec& exec) {
  if (stack_ == nullptr) return {-1, SpawnStage::kClone, ENOMEM};
  ChildArgs args{&exec, reset_signals_.data(), reset_signals_.size(), 0, 0};
  // No handler of ours may run in the child while it shares our memory; it
  // unblocks right before execve, after resetting the dispositions.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  const int pid = clone(ChildMain, static_cast<char*>(stack_) + stack_size_,
                        CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int clone_err = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return {-1, SpawnStage::kClone, clone_err};
  if (args.stage != static_cast<int>(SpawnStage::kNone)) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return {-1, static_cast<SpawnStage>(args.stage), args.err};
  }
  return {pid, SpawnStage::kNone, 0};
}

}  // namespace coord::agent
