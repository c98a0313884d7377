// Killing a job generation's processes on this node: SIGTERM, grace, SIGKILL
// (cgroup.kill + process groups + COORD_JOB_TAG scan, which catches whatever
// escaped its process group with setsid or daemonized), then verification that
// nothing is left. Runs in coord-agent (Kill RPC, orphan cleanup after a
// supervisor died). Stateless; thread-safe. Never matches processes by name.
#pragma once

#include <string>
#include <vector>

#include "agent/state_dir.h"

namespace coord::agent {

struct KillTarget {
  std::string tag;                 // COORD_JOB_TAG of the generation
  std::string cgroup_dir;          // generation cgroup, "" without cgroups
  std::vector<ProcId> rank_mains;  // ranks not known to have exited
};

struct KillOutcome {
  int ranks_signalled = 0;     // rank main processes alive when the kill began
  int sigkilled = 0;           // processes alive when the grace period ended
  std::vector<int> killed;     // their pids
  std::vector<int> survivors;  // still alive after verification: must be empty
};

// Live processes of the targets: cgroup members, members of live ranks' process
// groups, and processes whose environ carries one of the tags.
std::vector<int> CollectProcesses(const std::vector<KillTarget>& targets);

// grace_ms > 0: SIGTERM, wait (polling every 5 ms) until nothing is left or the
// grace expires, then SIGKILL. grace_ms == 0: SIGKILL at once. Then verifies for
// up to verify_ms, re-killing anything that shows up.
KillOutcome KillGenerations(const std::vector<KillTarget>& targets, int grace_ms,
                            int verify_ms = 2000);

}  // namespace coord::agent
