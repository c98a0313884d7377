// Test support: a whole Coord cluster on one machine, made of real processes. coordd
// listens on 127.0.0.1 and agent i on its own loopback address 127.0.0.(i+2), each on a
// port the kernel picks (or a given one, to restart a daemon where systemd would), with
// its state and log in the test's TempDir. coordctl runs against that coordd. The
// cluster stops what it started, by PID, when it goes away.
//
//   LocalCluster cluster(dir_);
//   ASSERT_TRUE(cluster.StartCoordd());
//   ASSERT_TRUE(cluster.StartAgents(2));  // also writes hosts_file()
//   RunResult r = cluster.Ctl({"start", "--hosts", cluster.hosts_file(), ...});
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::testing {

struct DaemonOptions {
  int port = 0;                    // gRPC port; 0: any (a restart passes the old one)
  bool http = false;               // also serve HTTP (/metrics, the status page) on :0
  std::vector<std::string> flags;  // extra command-line flags (TLS, heartbeats, ...)
  // Agents only: the address to listen on ("": AgentAddr(i)), and a command the agent
  // runs under (netns_exec NS --: a node with a network of its own); it must exec.
  std::string address;
  std::vector<std::string> exec_prefix;
};

class LocalCluster {
 public:
  // Daemons keep their state and logs in `dir` (coordd/, coordd.log, agentI/, agentI.log).
  explicit LocalCluster(const TempDir& dir) : dir_(dir) {}
  ~LocalCluster() { StopAll(); }
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Starts coordd and waits for its port file(s); the failure carries its log.
  ::testing::AssertionResult StartCoordd(const DaemonOptions& options = {});
  // Starts agent i on AgentAddr(i) (again, if it was stopped) and waits for its ports.
  ::testing::AssertionResult StartAgent(int i, const DaemonOptions& options = {});
  // Agents 0 .. n-1, listed as address:port lines in hosts_file().
  ::testing::AssertionResult StartAgents(int n, const DaemonOptions& options = {});

  static std::string AgentAddr(int i) { return "127.0.0." + std::to_string(i + 2); }
  std::string coordinator() const { return coordinator_; }  // "127.0.0.1:PORT"
  int coordd_port() const { return coordd_port_; }
  std::string coordd_http() const { return coordd_http_; }  // "" without options.http
  std::string agent_grpc(int i) const { return agents_.at(i).grpc; }
  std::string agent_http(int i) const { return agents_.at(i).http; }
  int agent_port(int i) const { return agents_.at(i).port; }
  int num_agents() const { return static_cast<int>(agents_.size()); }
  std::string hosts_file() const { return dir_.File("hosts.txt"); }
  Process& coordd() { return coordd_; }
  Process& agent(int i) { return *agents_.at(i).process; }

  // coordctl --coordinator coordinator() ARGS.
  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) const;
  // `coordctl status JOB --json` parsed ({} when it fails).
  nlohmann::json Status(const std::string& job) const;
  // coordd's and every agent's log, headed by their names (for a failed test's output).
  std::string Logs() const;

  // Stops every agent, then coordd (SIGTERM, then SIGKILL), by PID. Idempotent.
  void StopAll();

 private:
  struct Agent {
    std::unique_ptr<Process> process;
    std::string grpc, http;
    int port = 0;
  };

  const TempDir& dir_;
  Process coordd_;
  int coordd_port_ = 0;
  std::string coordinator_, coordd_http_;
  std::vector<Agent> agents_;
};

// After its agent stopped: removes the agent's default parent cgroup
// (coord-<tag of state_dir>, agent/cgroup.h) if nothing is left inside. An agent that was
// SIGKILLed, or stopped while a generation's ranks still ran, cannot; and each test's
// state dirs are new, so nothing would ever reuse or remove it. StopAll calls it.
void RemoveAgentCgroup(const std::string& state_dir);

// After a test: every process carrying COORD_JOB_ID=job must be gone within wait_ms
// (0: now). Fails the test with their count otherwise, and SIGKILLs them.
void ExpectJobProcessesGone(const std::string& job, int wait_ms = 0);

}  // namespace coord::testing
