// Simulated coord-agents for scale tests: N agents in one process, each a real gRPC
// server on its own loopback address and port, speaking proto/agent.proto (Ping,
// ReservePort, Launch, Kill, Watch with replay + heartbeats + progress, ListJobs,
// CheckNode, SharedTokens, RankSnapshots, TailLogs). Ranks are simulated: no process
// runs; a launched rank is RUNNING at once, writes a progress record every
// progress_ms (iteration, loss, timings, as gpt-rank does) and ends when killed or
// told to (ExitRank, FinishAll). LoseNode makes an agent vanish as a crashed node
// does: its streams end, its port closes, no heartbeat comes any more.
//
// Threads: the servers use gRPC's callback API (no thread per server or per stream);
// one ticker thread writes progress and heartbeats. Every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace coord::sim {

struct SimOptions {
  int agents = 1;
  // Agent i listens on 127.<first_octet + i / 62500>.<(i / 250) % 250>.<i % 250 + 1>:0
  // (every 127.x.y.z is loopback); distinct addresses, as distinct nodes have.
  int first_octet = 1;
  int progress_ms = 500;  // each running rank writes a record this often
};

struct SimCounts {
  int agents = 0;
  int lost = 0;
  int watches = 0;         // open Watch streams
  int64_t running = 0;     // ranks
  int64_t exited = 0;
  int64_t launches = 0;    // Launch RPCs served
  int64_t kills = 0;       // Kill RPCs served
  int64_t heartbeats = 0;  // heartbeat events written
};

class SimAgent;

class SimCluster {
 public:
  /// Starts every agent's server (port 0) and the ticker; fails if one cannot bind.
  static StatusOr<std::unique_ptr<SimCluster>> Create(const SimOptions& options);
  ~SimCluster();
  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  int size() const { return static_cast<int>(agents_.size()); }
  /// "address:port" of agent i, as a hosts file names it.
  std::string Target(int i) const;
  /// One "address:port" line per agent, in agent order.
  std::string HostsText() const;

  /// Rank `rank` of the newest generation of `job_id` ("" = any job) that runs it
  /// exits with `code`. NotFound when no agent runs such a rank.
  Status ExitRank(const std::string& job_id, int rank, int code);
  /// Every running rank exits 0; returns how many did.
  int64_t FinishAll();
  /// Agent i stops: its streams end, its server shuts down (connections refused).
  Status LoseNode(int i);
  SimCounts Counts() const;

  /// The control language of sim_agents_main, one command a line:
  ///   exit RANK CODE [JOB]   finish   lose AGENT   stats   hosts
  /// Returns the reply line ("ok ..." or "error ...").
  std::string Command(const std::string& line);

 private:
  explicit SimCluster(const SimOptions& options);
  void TickLoop();

  const SimOptions options_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::atomic<bool> stop_{false};
  std::thread ticker_;
};

}  // namespace coord::sim
