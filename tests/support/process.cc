// Test support: spawning, waiting for and cleaning up real processes (see process.h).
#include "tests/support/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

#ifndef COORD_TEST_BIN_DIR
#error "COORD_TEST_BIN_DIR must be defined by CMake"
#endif

namespace coord::testing {
namespace {

// Child side of fork: dies with the test, environment, output files, exec. Only called
// in the child; `parent` is the test's pid, taken before the fork.
[[noreturn]] void ExecChild(pid_t parent, const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, const std::string& out,
                            const std::string& err, int death_signal = SIGKILL) {
  // When ctest's timeout SIGKILLs the test, nothing of ours runs to stop its children:
  // the kernel does (the flag survives exec). A test that already died before the
  // prctl left us with another parent: exit rather than run unowned.
  if (prctl(PR_SET_PDEATHSIG, death_signal) != 0 || getppid() != parent) _exit(127);
  // Programs under test never pick up the developer's own certificates
  // (~/.coord/tls); a test that wants TLS passes COORD_TLS_DIR or --tls-dir.
  setenv("COORD_TLS_DIR", "/nonexistent/coord-test-tls", 1);
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, 0);
  int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int e = err == out ? o : open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(o, 1);
  dup2(e, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
  _exit(127);
}

}  // namespace

std::string BinDir() { return COORD_TEST_BIN_DIR; }
std::string BinPath(const std::string& name) { return BinDir() + "/" + name; }

RunResult RunCommand(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env, int timeout_ms,
                     int stop_signal) {
  TempDir tmp;
  std::string out = tmp.File("out"), err = tmp.File("err");
  auto start = std::chrono::steady_clock::now();
  RunResult result;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) ExecChild(parent, argv, env, out, err, stop_signal);
  int status = 0;
  auto exited = [&] { return waitpid(pid, &status, WNOHANG) == pid; };
  if (!WaitUntil(exited, timeout_ms)) {
    result.timed_out = true;
    kill(pid, stop_signal);
    if (stop_signal == SIGKILL || !WaitUntil(exited, 5000)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = (!result.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  result.out = ReadAll(out);
  result.err = ReadAll(err);
  return result;
}

Process::~Process() { Stop(); }

bool Process::Start(const std::vector<std::string>& argv, const std::string& log_path,
                    const std::map<std::string, std::string>& env) {
  reaped_ = false;
  wait_status_ = -1;
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) ExecChild(parent, argv, env, log_path, log_path);
  return pid_ > 0;
}

bool Process::Alive() const {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
  reaped_ = true;
  wait_status_ = status;
  return false;
}

int Process::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  if (!WaitUntil([&] { return !Alive(); }, timeout_ms)) return -1;
  return wait_status_;
}

int Process::Stop(int grace_ms) {
  if (pid_ <= 0) return -1;
  if (reaped_ || !Alive()) {
    pid_ = -1;
    return wait_status_;
  }
  int status = 0;
  kill(pid_, SIGTERM);
  bool exited = WaitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, grace_ms);
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return status;
}

void Process::Crash() {
  if (pid_ <= 0) return;
  if (reaped_ || !Alive()) {
    pid_ = -1;
    return;
  }
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::vector<pid_t> ProcessesWithEnv(const std::string& name, const std::string& value) {
  std::vector<pid_t> pids;
  std::string needle = name + "=" + value;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (struct dirent* e = readdir(d)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string env = ReadAll("/proc/" + std::string(e->d_name) + "/environ");
    // Zombies have an empty environ: they are already dead, only not yet reaped.
    size_t pos = 0;
    while (pos < env.size()) {
      size_t nul = env.find('\0', pos);
      if (nul == std::string::npos) nul = env.size();
      if (env.compare(pos, nul - pos, needle) == 0) {
        pids.push_back(static_cast<pid_t>(pid));
        break;
      }
      pos = nul + 1;
    }
  }
  closedir(d);
  return pids;
}

void KillPids(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) kill(p, SIGKILL);
}

}  // namespace coord::testing
