// The node agent's logic, without gRPC (style rule "gRPC at the edge"): launch a
// generation under a detached coord-supervisor, kill it, report its ranks
// (Watch), tail its logs, re-adopt running generations after an agent restart
// and kill only what nobody supervises any more. Runs in coord-agent.
//
// Lifecycles: a generation's and a rank's state change only through
// SetGenStateLocked/SetRankStateLocked, which check lifecycle.h's edge tables.
// Seams (AgentServiceOptions): the clock, the node's processes (supervisor
// spawn, kill, /proc) and the watcher of the state dir are injected, so the
// rules here are unit-tested with fakes (tests/unit/agent/agent_service_test.cc).
//
// Threading: every method may be called concurrently from gRPC threads; the
// watcher's thread calls OnFile/OnPidExit/OnTick. Shared state is guarded by
// mu_. Lock order: AgentService::mu_ -> EventHub::mu_ / GenWatcher's lock /
// PortReservations::mu_. Slow work (kill grace, /proc scans for a Kill, waiting
// for a supervisor) happens with mu_ released.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/event_hub.h"
#include "agent/gen_watcher.h"
#include "agent/kill.h"
#include "agent/lifecycle.h"
#include "agent/node_metrics.h"
#include "agent/node_processes.h"
#include "agent/port_reservations.h"
#include "agent/progress_reader.h"
#include "agent/state_dir.h"
#include "common/clock.h"
#include "common/status.h"
#include "env_check/system.h"
#include "proto/agent.pb.h"

namespace coord::agent {

using StreamWriter = std::function<bool(const AgentEvent&)>;
using LogWriter = std::function<bool(const LogBatch&)>;
using CancelledFn = std::function<bool()>;

// What the gRPC adapter calls; tests and coordctl's local mode may fake it.
class AgentHandler {
 public:
  virtual ~AgentHandler() = default;
  virtual Status Ping(const PingRequest& req, PingReply* reply) = 0;
  virtual Status ReservePort(const ReservePortRequest& req, ReservePortReply* reply) = 0;
  virtual Status Launch(const LaunchRequest& req, LaunchReply* reply) = 0;
  virtual Status Kill(const KillRequest& req, KillReply* reply) = 0;
  virtual Status Watch(const WatchRequest& req, const StreamWriter& write,
                       const CancelledFn& cancelled) = 0;
  virtual Status TailLogs(const TailLogsRequest& req, const LogWriter& write,
                          const CancelledFn& cancelled) = 0;
  virtual Status ListJobs(const ListJobsRequest& req, ListJobsReply* reply) = 0;
  virtual Status CheckNode(const CheckNodeRequest& req, CheckNodeReply* reply) = 0;
  virtual Status SharedTokens(const SharedTokensRequest& req, SharedTokensReply* reply) = 0;
  virtual Status RankSnapshots(const RankSnapshotsRequest& req, RankSnapshotsReply* reply) = 0;
};

struct AgentServiceOptions {
  std::string state_dir;        // absolute, exists (a fresh temp dir in unit tests)
  std::string supervisor_path;  // absolute, executable (what the real processes spawn)
  std::string cgroup_parent;    // resolved parent cgroup, "" = no cgroups
  int heartbeat_ms = 1000;
  // The node's usage (node_usage.h) rides on the first heartbeat after each usage_ms; no
  // sampler (unit tests) or 0: never.
  int usage_ms = 2000;
  std::function<void(NodeUsage*)> sample_usage;
  int default_grace_ms = 5000;
  int launch_timeout_ms = 60000;  // every rank exec'd within this, or the launch fails
  // Retention of STATE/jobs: the generation dirs (logs, records) of the newest keep_jobs
  // finished jobs are kept, and every generation that did not end with all ranks
  // exiting 0; older clean ones are removed when a generation ends and at start.
  // Negative: keep everything.
  int keep_jobs = 50;
  // A launch is refused while the state dir's filesystem has less free (0: never).
  int min_free_mb = 64;
  // What the node checks read; null = this machine (tests give a fake node).
  std::shared_ptr<const env_check::System> system;
  // --- seams: null = the real one ---
  std::shared_ptr<const Clock> clock;        // SystemClock()
  std::shared_ptr<NodeProcesses> processes;  // MakeRealNodeProcesses(supervisor_path)
  GenWatcherFactory make_watcher;            // GenMonitor::Create (inotify + pidfds)
};

class AgentService final : public AgentHandler {
 public:
  static constexpr const char* kVersion = "0.1.0";

  // Loads the state dir, re-adopts live generations, kills orphans.
  static StatusOr<std::unique_ptr<AgentService>> Create(const AgentServiceOptions& options);
  ~AgentService() override;

  Status Ping(const PingRequest& req, PingReply* reply) override;
  Status ReservePort(const ReservePortRequest& req, ReservePortReply* reply) override;
  Status Launch(const LaunchRequest& req, LaunchReply* reply) override;
  Status Kill(const KillRequest& req, KillReply* reply) override;
  Status Watch(const WatchRequest& req, const StreamWriter& write,
               const CancelledFn& cancelled) override;
  Status TailLogs(const TailLogsRequest& req, const LogWriter& write,
                  const CancelledFn& cancelled) override;
  Status ListJobs(const ListJobsRequest& req, ListJobsReply* reply) override;
  // node_checks.cc
  Status CheckNode(const CheckNodeRequest& req, CheckNodeReply* reply) override;
  Status SharedTokens(const SharedTokensRequest& req, SharedTokensReply* reply) override;
  // rank_snapshots.cc
  Status RankSnapshots(const RankSnapshotsRequest& req, RankSnapshotsReply* reply) override;

  // The ranks running now, with their processes (the /metrics page). agent_state.cc.
  std::vector<RunningRank> RunningRanks() const;

  // Ends open streams and stops the monitor thread. Never kills a job.
  void Shutdown();
  const std::string& agent_id() const { return agent_id_; }
  const std::string& agent_tag() const { return agent_tag_; }
  /// Progress records ignored so far (malformed or too long), every rank together: for
  /// the agent's metrics.
  int64_t malformed_progress_records() const { return malformed_progress_records_.load(); }

 private:
  struct Rank {
    int rank = 0;
    int local_rank = 0;
    ProcId proc;
    int64_t start_ms = 0;
    RankState state = RANK_STATE_UNKNOWN;  // change with SetRankStateLocked
    RankExit exit;                         // valid in RANK_EXITED
    RankProgress progress;  // the last progress record read (records = file size then)
    ProgressReader progress_reader;  // where reading rank-R.progress has got to
  };
  struct Generation {
    uint64_t key = 0;
    std::string job_id;
    int generation = 0;
    int node_rank = 0;
    std::string dir, cgroup_dir, tag;
    std::vector<Rank> ranks;  // in local-rank order
    ProcId supervisor;
    GenState state = GenState::kFound;  // change with SetGenStateLocked
  };
  using GenPtr = std::shared_ptr<Generation>;

  explicit AgentService(const AgentServiceOptions& options);
  Status Init();

  // --- state (agent_state.cc); all *Locked methods require mu_ ---------------
  // The only writers of the two lifecycles: a transition that is not an edge of
  // lifecycle.h's tables is logged as an internal error and not made.
  bool SetGenStateLocked(Generation& gen, GenState to);
  bool SetRankStateLocked(const Generation& gen, Rank& r, RankState to);
  // A Launch call returns: RUNNING, or ENDED if `done` came meanwhile.
  void FinishLaunchLocked(Generation& gen);
  void Recover();
  GenPtr LoadGeneration(const std::string& job_id, int generation, const std::string& dir);
  void SyncFromDiskLocked(Generation& gen);
  void ApplyStartedLocked(Generation& gen, int rank);
  void ApplyExitLocked(Generation& gen, int rank);
  void CheckDoneLocked(Generation& gen);
  Status CheckRoomForLaunch() const;
  // Applies options_.keep_jobs (see AgentServiceOptions) to jobs_ and the state dir.
  void PruneStateLocked();
  void CleanupOrphanLocked(Generation& gen, const std::string& why);
  void KillUnknownTaggedLocked();
  void OnFile(uint64_t key, const std::string& name);
  void OnPidExit(uint64_t key);
  void OnTick();
  RankStatus MakeRankStatusLocked(const Generation& gen, const Rank& r) const;
  // The running ranks' latest progress records, for a heartbeat (agent_state.cc);
  // `sent`: the records count each rank had in this stream's last heartbeat, so each
  // record's timings go out once per stream.
  void CollectProgressLocked(Heartbeat* hb, std::map<std::string, int64_t>* sent);
  void PublishLocked(const Generation& gen, const Rank& r);
  GenPtr FindLocked(const std::string& job_id, int generation) const;
  KillTarget MakeKillTargetLocked(const Generation& gen) const;

  // --- launch helpers (agent_service.cc) -------------------------------------
  Status ValidateLaunch(const LaunchRequest& req) const;
  StatusOr<GenSpec> BuildSpec(const LaunchRequest& req, const std::string& tag,
                              const std::string& cgroup_dir) const;
  Status StartGeneration(const LaunchRequest& req, const GenPtr& gen, LaunchReply* reply);
  void DropGeneration(const GenPtr& gen);
  // Waits (lock held on mu_) until none of `gens` is launching, or the clock passes deadline_ms.
  void WaitForLaunchesLocked(std::unique_lock<std::mutex>& lock, const std::vector<GenPtr>& gens,
                             int64_t deadline_ms);

  const AgentServiceOptions options_;
  const std::shared_ptr<const Clock> clock_;
  const std::shared_ptr<NodeProcesses> processes_;
  const std::string hostname_;
  const std::string agent_id_;
  const std::string agent_tag_;
  const int64_t start_time_ms_;
  const std::shared_ptr<const env_check::System> system_;
  EventHub hub_;
  PortReservations ports_;
  std::unique_ptr<GenWatcher> monitor_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> malformed_progress_records_{0};

  mutable std::mutex mu_;
  std::condition_variable launch_cv_;  // a generation left LAUNCHING / LAUNCHING_ENDED
  // job id -> generation -> state
  std::map<std::string, std::map<int, GenPtr>> jobs_;  // guarded by mu_
  std::map<uint64_t, GenPtr> by_key_;                  // guarded by mu_
  uint64_t next_key_ = 1;                              // guarded by mu_
};

}  // namespace coord::agent
