// Test support: real processes. Run a program to completion with a deadline
// (RunCommand), or spawn a long-running one with extra environment and its output
// in a file (Process), stop it by PID (never by name), and scan /proc for
// processes carrying an env marker, so a test can prove that nothing it started is
// left running. Every child gets PR_SET_PDEATHSIG (SIGKILL, or RunCommand's stop_signal): it dies with the test even
// when the test is SIGKILLed (ctest's timeout). The signal follows the *thread* that
// forked, so start a long-running Process from a thread that outlives it (the test's
// own thread).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace coord::testing {

// The build's bin/ (set by CMake as COORD_TEST_BIN_DIR).
std::string BinDir();
std::string BinPath(const std::string& name);

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
};

// Runs argv to completion (or stops it at the deadline) with env overrides.
// stop_signal: what the child gets when the test dies or the deadline passes (then
// SIGKILL 5 s later). SIGKILL by default; a launcher whose ranks are its own children
// (mpirun) needs SIGTERM, which it forwards to them: SIGKILL would orphan them.
RunResult RunCommand(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env = {}, int timeout_ms = 60000,
                     int stop_signal = SIGKILL);

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

// PIDs of processes whose environment contains NAME=VALUE exactly.
std::vector<pid_t> ProcessesWithEnv(const std::string& name, const std::string& value);
// SIGKILLs those PIDs (cleanup after a failed test; the test has already failed then).
void KillPids(const std::vector<pid_t>& pids);

}  // namespace coord::testing
