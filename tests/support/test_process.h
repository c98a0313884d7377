// Test support: real processes for integration tests. Spawn a binary with extra
// environment, capture its output in files, wait with a deadline, stop it by
// PID (never by name), and scan /proc for processes carrying an env marker, so a
// test can prove that nothing it started is left running.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace coord::testing {

// The build's bin/ (set by CMake as COORD_TEST_BIN_DIR).
std::string BinDir();
std::string BinPath(const std::string& name);

// A fresh directory under /tmp, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
};

// Runs argv to completion (or kills it at the deadline) with env overrides.
RunResult RunCommand(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env = {}, int timeout_ms = 60000);

// A long-running child (a daemon under test). Output goes to log_path.
class Process {
 public:
  Process() = default;
  ~Process();  // Stop()
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& env = {});
  pid_t pid() const { return pid_; }
  // False once it exited (it is then reaped and its wait status kept).
  bool Alive() const;
  // Waits up to timeout_ms for it to exit: its wait status, or -1 if still running.
  int Wait(int timeout_ms);
  // SIGTERM, wait up to grace_ms, then SIGKILL; reaps. Returns the wait status or -1.
  int Stop(int grace_ms = 5000);
  // SIGKILL and reap (a crash).
  void Crash();

 private:
  pid_t pid_ = -1;
  mutable bool reaped_ = false;
  mutable int wait_status_ = -1;
};

// Waits for a file to exist and be non-empty; returns its contents ("" on timeout).
std::string WaitForFile(const std::string& path, int timeout_ms);
std::string ReadAll(const std::string& path);
// Creates or replaces path with text; false if it could not be written.
bool WriteTextFile(const std::string& path, const std::string& text);

// PIDs of processes whose environment contains NAME=VALUE exactly.
std::vector<pid_t> ProcessesWithEnv(const std::string& name, const std::string& value);
// SIGKILLs those PIDs (cleanup after a failed test; the test has already failed then).
void KillPids(const std::vector<pid_t>& pids);

// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, close). For
// programs that take a fixed port (MASTER_PORT); the kernel does not hand it out
// again soon.
int UnusedTcpPort();

// Polls `pred` every 5 ms until true or timeout; returns the final value.
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms);

}  // namespace coord::testing

#include <chrono>
#include <thread>

namespace coord::testing {
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}
}  // namespace coord::testing
