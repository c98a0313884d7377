// JobManager's private records, shared by job_manager.cc (API, launch, kill, logs) and
// job_supervision.cc (events, heartbeats, transitions). Everything here is guarded by
// JobManager::mu_ unless a field says otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coordinator/agent_client.h"
#include "coordinator/job_manager.h"
#include "coordinator/node_state.h"

namespace coord::coordinator {

struct JobManager::Job {
  JobPlan plan;
  JobStatus status;                // what GetJob returns; ranks indexed by global rank
  bool launching = false;          // StartJob is between LAUNCHING and the end of its RPCs
  bool details_pending = false;    // the failing rank's stderr tail is being fetched
  int64_t running_since_mono = 0;  // heartbeat deadlines count from here at the earliest
  int64_t ended_mono = 0;          // when it became terminal (0: not, or before a restart)
  // Startup and hang deadlines (progress_deadline.h): the newest progress of this
  // generation (0: none yet), and each rank's record count (a rank absent: still starting).
  int64_t last_progress_mono = 0;
  std::map<int, int64_t> progress_records;
  std::map<int, agent::RankProgress> last_progress;  // by rank, this generation (Snapshot)
  // This generation's straggler scores, and each rank's count of malformed records.
  StragglerDetector stragglers;
  int64_t stragglers_scored_mono = 0;  // the last re-score (job_supervision.cc: how often)
  int64_t stragglers_cost_us = 0;      // what the last re-score took (steady clock)
  std::map<int, int64_t> malformed_records;
  // The rank table changed other than through journaled rank records (launch replies, a
  // new layout) since the journal last had it whole: the next state record carries it.
  bool ranks_dirty = false;
};

struct JobManager::AgentLink {
  HostEntry host;                       // the first hosts entry seen for this target
  std::unique_ptr<AgentClient> client;  // never replaced: used outside mu_
  // The shared Watch stream. Only the monitor thread opens, stores and closes it.
  std::unique_ptr<WatchHandle> watch;
  uint64_t epoch = 0;   // of the current stream: callbacks of older ones are ignored
  bool broken = false;  // the current stream ended by itself; re-open at reopen_at_mono
  int backoff_ms = 0;
  int64_t reopen_at_mono = 0;
  int64_t last_heard_mono = 0;  // any event (heartbeat or rank) from the current agent
};

// Aborts on a broken invariant (a programmer bug, never bad input: style rule 4).
#define COORD_CHECK(cond, what)                                                         \
  do {                                                                                  \
    if (!(cond)) ::coord::coordinator::internal::CheckFailed(__FILE__, __LINE__, what); \
  } while (0)

namespace internal {
[[noreturn]] void CheckFailed(const char* file, int line, const std::string& what);
// Runs fn(0..n-1) on up to kMaxParallelCalls threads and waits for all: the agents' RPCs
// go out in parallel. A node that is slow to answer holds one worker, not the others.
constexpr int kMaxParallelCalls = 256;
void ParallelFor(int n, const std::function<void(int)>& fn);
// The hosts-file nodes the job does not use now whose status.spares entry is in `state`:
// NODE_SPARE (may replace a failed node) or NODE_EXCLUDED (left out after a failure:
// never used again, but still killed with the job). status.spares is the one record of both.
std::vector<HostEntry> SparesIn(const JobPlan& plan, const JobStatus& status, NodeState state);
// "node 1 host:port (hosts.txt:3)" for messages.
std::string NodeName(const JobPlan& plan, int node_rank);
// The status's node and rank tables for the plan's nodes (fresh: nothing launched), and
// the hosts-file nodes it does not use (spares, or excluded ones).
void FillLayout(const JobPlan& plan, const std::set<std::string>& excluded, JobStatus* st);
// "a, b, c" for messages.
std::string Join(const std::vector<std::string>& items, const std::string& sep);
}  // namespace internal

}  // namespace coord::coordinator
