// In-memory coord-agents for the coordinator's unit tests: FakeCluster hands JobManager
// FakeAgentClients (through agent_factory) that talk to scripted FakeAgents. Tests script
// Ping/Launch/Kill results and push Watch events; events are delivered on the pushing
// thread, so a job's state has changed by the time Push* returns. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/agent_client.h"

namespace coord::coordinator::testing {

class FakeAgent {
 public:
  explicit FakeAgent(std::string target) : target_(std::move(target)) {}
  ~FakeAgent();

  // --- scripting ---
  void SetPingStatus(const Status& s);
  void SetPingHangs(bool hangs);          // Ping waits out its timeout: DEADLINE_EXCEEDED
  void SetLaunchStatus(const Status& s);  // Launch fails with this; no rank starts
  void SetLaunchHangs(bool hangs);        // ranks start but the reply never comes
  void SetReservedPort(int port);
  void SetKillSurvivors(int survivors);
  void SetKillStatus(const Status& s);
  void SetWatchRefused(bool refused);  // Watch streams end at once (UNAVAILABLE)
  void SetStderr(int rank, std::vector<std::string> lines);
  // CheckNode answers with these results (default: none, i.e. a healthy node).
  void SetCheckResults(std::vector<coord::agent::CheckResult> results);
  // RankSnapshots answers with this (default: UNIMPLEMENTED, as an older agent would).
  void SetRankSnapshots(StatusOr<coord::agent::RankSnapshotsReply> reply);

  // --- observations ---
  int pings() const;
  int reserves() const;
  std::vector<coord::agent::LaunchRequest> launches() const;
  std::vector<coord::agent::KillRequest> kills() const;
  std::vector<coord::agent::TailLogsRequest> tails() const;
  int checks() const;  // CheckNode calls
  int open_watches() const;
  int watch_opens() const;

  // --- events (delivered to every open Watch on this thread) ---
  void PushRankExit(const std::string& job_id, int generation, int rank, int exit_code,
                    int signal = 0);
  void PushHeartbeat();
  void PushEvent(const coord::agent::AgentEvent& event);
  void BreakWatches(const Status& why);  // every open stream ends with `why`

  // --- used by FakeAgentClient ---
  StatusOr<coord::agent::PingReply> Ping(int timeout_ms);
  StatusOr<coord::agent::ReservePortReply> ReservePort(int timeout_ms);
  StatusOr<coord::agent::LaunchReply> Launch(const coord::agent::LaunchRequest& r, int timeout_ms);
  StatusOr<coord::agent::KillReply> Kill(const coord::agent::KillRequest& r);
  std::unique_ptr<WatchHandle> Watch(AgentEventFn on_event, WatchEndFn on_end);
  Status TailLogs(const coord::agent::TailLogsRequest& r, const LogBatchFn& on_batch);
  StatusOr<coord::agent::CheckNodeReply> CheckNode(const coord::agent::CheckNodeRequest& r);
  StatusOr<coord::agent::RankSnapshotsReply> RankSnapshots(
      const coord::agent::RankSnapshotsRequest& r);
  std::vector<coord::agent::RankSnapshotsRequest> snapshot_requests() const;

  struct Subscriber;

 private:
  coord::agent::AgentEvent RankEvent(const coord::agent::RankStatus& rank, bool replay);
  void Deliver(const coord::agent::AgentEvent& event);
  void RemoveSubscriber(Subscriber* sub);
  friend class FakeWatchHandle;

  const std::string target_;
  mutable std::mutex mu_;
  Status ping_status_;
  bool ping_hangs_ = false;
  Status launch_status_;
  bool launch_hangs_ = false;
  int reserved_port_ = 29500;
  int kill_survivors_ = 0;
  Status kill_status_;
  bool watch_refused_ = false;
  std::map<int, std::vector<std::string>> stderr_;
  std::vector<coord::agent::CheckResult> check_results_;
  StatusOr<coord::agent::RankSnapshotsReply> snapshots_ =
      Status(StatusCode::kUnimplemented, "this fake agent has no rank snapshots");
  std::vector<coord::agent::RankSnapshotsRequest> snapshot_requests_;
  int checks_ = 0;
  int pings_ = 0;
  int reserves_ = 0;
  int watch_opens_ = 0;
  uint64_t seq_ = 0;
  std::vector<coord::agent::LaunchRequest> launches_;
  std::vector<coord::agent::KillRequest> kills_;
  std::vector<coord::agent::TailLogsRequest> tails_;
  // (job, generation, rank) -> last status, for Watch snapshots and Kill.
  std::map<std::tuple<std::string, int, int>, coord::agent::RankStatus> ranks_;
  std::vector<std::shared_ptr<Subscriber>> subs_;
};

class FakeCluster {
 public:
  /// The agent for "host:port", made on first use.
  FakeAgent* Agent(const std::string& target);
  /// The factory to put in JobManagerOptions / CoordinatorOptions.
  AgentClientFactory Factory();

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<FakeAgent>> agents_;
};

}  // namespace coord::coordinator::testing
