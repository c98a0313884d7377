// What a submitted job will run where: the validated hosts and spec, the rank layout
// (node rank = hosts-file order, global rank = node_rank * nproc + local_rank) and the
// per-node LaunchRequest. Pure functions of the request (plus DNS in BuildPlan), so the
// rank rules are unit-tested without any agent. Thread-compatible values.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/hostfile.h"
#include "common/status.h"
#include "proto/agent.pb.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

struct JobPlan {
  std::string name;         // the spec's "name" (made id-safe), or "job"
  std::string config_json;  // the spec's full text, kept for restarts and the journal
  std::string config_path;  // for messages
  std::string hosts_text;
  std::string hosts_path;  // for messages
  std::string workdir;     // launch.workdir, else the submitter's cwd
  bool allow_overlap = false;
  bool skip_checks = false;     // launched without the pre-launch checks (`--skip-checks`)
  std::vector<HostEntry> pool;  // every host in the hosts file, in file order
  // The nodes of the current generation, index = node rank: the first max_nodes of the
  // pool at submit; a restart may replace a failed node by a spare or (elastic) drop it.
  std::vector<HostEntry> hosts;
  int min_nodes = 0;  // launch.nnodes (MIN:MAX); both equal hosts.size() unless elastic
  int max_nodes = 0;
  int nproc_per_node = 1;
  int world_size = 0;       // hosts.size() * nproc_per_node
  std::string master_addr;  // node 0's host, as written
  int master_port = 0;      // 0: reserved on node 0's agent at launch
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  int kill_grace_ms = 5000;
  int max_restarts = 0;
  int restart_backoff_ms = 1000;
  int hang_timeout_ms = 0;     // launch.hang_timeout_s; 0: no hang detection
  int startup_timeout_ms = 0;  // launch.startup_timeout_s; 0: no startup deadline
};

struct PlanResult {
  JobPlan plan;
  std::vector<std::string> warnings;
};

/// Parses and validates the request's hosts text (ParseHostfile, then ResolveHosts unless
/// `resolve_hosts` is false) and spec (ParseJobSpec) and lays out the ranks. Every problem
/// is INVALID_ARGUMENT whose message names the file and line (or JSON path).
StatusOr<PlanResult> BuildPlan(const StartJobRequest& request, bool resolve_hosts = true);

/// Makes `hosts` the plan's nodes (index = node rank): world size and master address follow.
void SetNodes(JobPlan* plan, std::vector<HostEntry> hosts);

/// The nodes of the next generation after a failure.
struct Relayout {
  std::vector<HostEntry> hosts;          // the new layout (unchanged when waiting)
  std::vector<std::string> replaced;     // "a:1 by b:2"
  std::vector<std::string> dropped;      // targets left out (elastic)
  std::vector<std::string> waiting_for;  // bad nodes that have no replacement: wait for them
};
/// Keeps every good node at its node rank; a bad node (by target) takes the next spare in
/// order, else is dropped while at least plan.min_nodes remain, else is waited for.
Relayout ChooseNodes(const JobPlan& plan, const std::set<std::string>& bad,
                     const std::vector<HostEntry>& spares);

/// The global ranks of node `node_rank`, index = local rank.
std::vector<int> RanksOfNode(const JobPlan& plan, int node_rank);

/// The Launch request for one node of generation `generation`.
coord::agent::LaunchRequest MakeLaunchRequest(const JobPlan& plan, const std::string& job_id,
                                              int generation, int node_rank, int master_port);

/// "<name>" reduced to [A-Za-z0-9._-] (others become '-'), at most 64 chars; "job" if empty.
/// Job ids end up in the agents' paths and cgroup names, so they must be tame.
std::string SanitizeJobName(const std::string& name);

/// "host:port (hosts.txt:3)": how messages name a node.
std::string DescribeHost(const HostEntry& host, const std::string& hosts_path);

}  // namespace coord::coordinator
