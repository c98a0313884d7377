// A node for AgentService unit tests, with no real process: a fake process
// table behind NodeProcesses, a fake coord-supervisor that writes the records
// the real one writes (into the real state dir, a temp dir), and a GenWatcher
// whose events queue up like inotify/pidfd events until the test calls Deliver().
// It outlives AgentService instances, as a node outlives an agent restart.
//
// Thread-safe (mu_). NodeProcesses calls may come with AgentService::mu_ held,
// so the fake never calls back into the service from them: supervisor records
// are written at once, their events only queued. Deliver() and Tick() run the
// service's callbacks on the test's thread, with mu_ released.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/gen_watcher.h"
#include "agent/node_processes.h"
#include "common/clock.h"

namespace coord::agent {

class FakeNode : public std::enable_shared_from_this<FakeNode> {
 public:
  // How the next spawned supervisor behaves.
  struct Script {
    bool spawn_fails = false;  // SpawnSupervisor fails: no supervisor, no records
    // kOk: every rank starts. kFail: the ranks in exec_fails do not (exit 127),
    // the others are killed, `done` follows. kDied: the supervisor dies after
    // starting the ranks, before its handshake. kTimeout: it hangs and starts none.
    LaunchAck ack = LaunchAck::kOk;
    std::set<int> exec_fails;  // global ranks whose exec fails (with kFail)
    bool hold_ack = false;     // WaitLaunchAck blocks until ReleaseAck()
  };
  struct Proc {
    int pid = 0;
    uint64_t start_ticks = 0;
    bool alive = true;
    std::string tag;  // COORD_JOB_TAG; "" for supervisors
    int rank = -1;    // -1: not a rank
    std::string gen_dir;
  };
  struct KillCall {
    std::vector<KillTarget> targets;
    int grace_ms = 0;
  };

  explicit FakeNode(std::shared_ptr<const Clock> clock) : clock_(std::move(clock)) {}

  std::shared_ptr<NodeProcesses> processes();
  GenWatcherFactory watcher_factory();

  void SetScript(const Script& script);
  void ReleaseAck();  // lets a held WaitLaunchAck go on

  // --- what happens on the node (records are written now, events queued) -----
  /// A rank ends by itself: the supervisor records its exit; after the last
  /// rank it writes `done` and exits.
  void RankExits(const std::string& gen_dir, int rank, int exit_code);
  /// The supervisor is SIGKILLed: its ranks keep running, nothing is recorded.
  /// notify=false: its pidfd event is lost (only the tick's check can notice).
  void KillSupervisor(const std::string& gen_dir, bool notify = true);
  /// A process of someone else's making carrying `tag`; returns its pid.
  int AddTaggedProcess(const std::string& tag);

  // --- the watcher's events --------------------------------------------------
  /// Runs the queued file and pid events through the service's callbacks.
  void Deliver();
  void Tick();

  // --- for assertions ----------------------------------------------------------
  Proc process(int pid) const;
  int supervisor_pid(const std::string& gen_dir) const;
  int rank_pid(const std::string& gen_dir, int rank) const;
  std::vector<int> LiveTagged(const std::string& prefix) const;
  std::vector<int> sigkilled() const;
  std::vector<KillCall> kill_calls() const;
  int spawns() const;
  int last_ack_timeout_ms() const;
  bool DirWatched(const std::string& dir) const;

 private:
  class Processes;
  class Watcher;
  struct Event {
    std::string dir, name;  // a record renamed into dir
    int pid = 0;            // or: this process ended
  };

  int NewProcLocked(const std::string& tag, int rank, const std::string& gen_dir);
  void WriteLocked(const std::string& dir, const std::string& name, const std::string& json);
  void DieLocked(int pid);
  // The supervisor of gen_dir saw its rank end (signal or exit code): it records it
  // and, once no rank is left, writes `done` and exits.
  void SupervisorReapsLocked(const std::string& gen_dir, int rank, int exit_code, int signal);

  // --- NodeProcesses / GenWatcher bodies ---
  StatusOr<SpawnedSupervisor> Spawn(const std::string& gen_dir);
  LaunchAck WaitAck(const SpawnedSupervisor& sup, int timeout_ms);
  KillOutcome Kill(const std::vector<KillTarget>& targets, int grace_ms);

  const std::shared_ptr<const Clock> clock_;
  mutable std::mutex mu_;
  std::condition_variable ack_cv_;
  Script script_;                              // guarded by mu_
  bool ack_released_ = false;                  // guarded by mu_
  int next_pid_ = 5'000'000;                   // above any real pid_max
  std::map<int, Proc> procs_;                  // guarded by mu_
  std::map<std::string, Script> gen_scripts_;  // gen dir -> its script; guarded by mu_
  std::deque<Event> events_;                   // guarded by mu_
  std::vector<int> sigkilled_;                 // guarded by mu_
  std::vector<KillCall> kill_calls_;           // guarded by mu_
  int spawns_ = 0;                             // guarded by mu_
  int last_ack_timeout_ms_ = -1;               // guarded by mu_
  // The current watcher's state (one AgentService at a time).
  GenWatcher::Callbacks callbacks_;           // guarded by mu_
  int watcher_id_ = 0;                        // the current watcher's; guarded by mu_
  bool watching_ = false;                     // guarded by mu_
  std::map<std::string, uint64_t> dir_keys_;  // guarded by mu_
  std::map<int, uint64_t> pid_keys_;          // guarded by mu_
};

}  // namespace coord::agent
