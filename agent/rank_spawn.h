// Starting one rank from coord-supervisor the way posix_spawn starts a process:
// clone(CLONE_VM | CLONE_VFORK), so the child borrows the supervisor's memory until
// its execve instead of copying it. A fork copies the page tables and the exec then
// tears the copy down again; with 8 supervisors starting 64 ranks on 2 cores that
// was a sixth of the launch's CPU (docs/benchmarks.md). posix_spawn itself cannot be
// used: a rank must join its cgroup before exec (so nothing it forks escapes), and
// glibc 2.36 has no spawn attribute for that.
//
// The child runs only syscall wrappers, on a stack of its own, writing nothing of
// the parent's but its error report. Single-threaded callers (the supervisor).
#pragma once

#include <cstddef>
#include <vector>

namespace coord::agent {

// Everything the child needs, prepared by the caller (the child allocates nothing).
// The strings must outlive Spawn().
struct RankExec {
  const char* exe = nullptr;        // resolved path, for execve
  char* const* argv = nullptr;      // null-terminated
  char* const* envp = nullptr;      // null-terminated
  const char* cgroup_procs = "";    // "<rank cgroup>/cgroup.procs"; "" = no cgroup
  const char* out_path = nullptr;   // stdout, appended
  const char* err_path = nullptr;   // stderr, appended
  const char* progress_path = nullptr;  // on kProgressFd, appended
  const char* workdir = nullptr;
};

// Where a spawn failed; the text for each is in SpawnStageName().
enum class SpawnStage { kNone = 0, kClone, kCgroup, kStdio, kChdir, kExec };
const char* SpawnStageName(SpawnStage stage);

struct SpawnResult {
  int pid = -1;  // > 0: the rank runs (it has exec'd, or was killed by a signal just before)
  SpawnStage failed = SpawnStage::kNone;
  int err = 0;  // errno of the failed step
};

class RankSpawner {
 public:
  // Asks once which signals have a disposition other than the default (the child
  // resets just those) and maps the child's stack.
  RankSpawner();
  ~RankSpawner();
  RankSpawner(const RankSpawner&) = delete;
  RankSpawner& operator=(const RankSpawner&) = delete;

  // Returns once the child has exec'd or failed; a failed child is reaped here.
  // The rank starts in its own session with every signal at its default and none
  // blocked, stdin /dev/null, and no descriptor of ours beyond 0-2 and kProgressFd.
  SpawnResult Spawn(const RankExec& exec);

 private:
  std::vector<int> reset_signals_;
  void* stack_ = nullptr;  // lowest address, a guard page; nullptr if mmap failed
  std::size_t stack_size_ = 0;
};

}  // namespace coord::agent
