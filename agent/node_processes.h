// How coord-agent acts on its node's processes: start a generation's
// coord-supervisor and wait for its launch handshake, look processes up, kill
// them. AgentService does all of this through this interface, so its rules
// (launch, kill, adopt, orphans) can be unit-tested with a fake process table;
// the real one (spawn.cc, proc_scan.cc, kill.cc) acts on this machine in real
// time. Implementations are thread-safe: AgentService calls them from gRPC
// threads and the monitor thread, never holding its own lock across a slow call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/kill.h"
#include "agent/proc_scan.h"
#include "agent/spawn.h"
#include "agent/state_dir.h"
#include "common/status.h"

namespace coord::agent {

class NodeProcesses {
 public:
  virtual ~NodeProcesses() = default;
  /// Starts the supervisor of the generation in gen_dir (its spec is written).
  virtual StatusOr<SpawnedSupervisor> SpawnSupervisor(const std::string& gen_dir) = 0;
  /// Waits up to timeout_ms for the supervisor's handshake (every rank exec'd or one failed).
  virtual LaunchAck WaitLaunchAck(const SpawnedSupervisor& supervisor, int timeout_ms) = 0;
  /// Reaps `pid` if it is an exited child of this agent; a no-op otherwise.
  virtual void ReapIfOurChild(int pid) = 0;
  /// The process's start time in clock ticks since boot; 0 when it is gone.
  virtual uint64_t StartTicks(int pid) = 0;
  /// True when this exact process (pid + start ticks) is alive.
  virtual bool Alive(const ProcId& proc) = 0;
  /// SIGKILL to one process (a supervisor whose launch broke, a tagged stray).
  virtual void SigKill(int pid) = 0;
  /// Live processes whose COORD_JOB_TAG starts with `prefix`.
  virtual std::vector<TaggedProc> FindTagged(const std::string& prefix) = 0;
  /// SIGTERM, grace, SIGKILL and verification (kill.h); grace_ms 0 = SIGKILL at once.
  virtual KillOutcome KillGenerations(const std::vector<KillTarget>& targets, int grace_ms) = 0;
};

/// This machine's processes; supervisor_path is the coord-supervisor executable.
std::shared_ptr<NodeProcesses> MakeRealNodeProcesses(const std::string& supervisor_path);

}  // namespace coord::agent
