// The cluster check: env_check on every node through its agent, then what only the
// coordinator can see by comparing nodes (env_check/cluster.h). Used by
// `coordctl check` (in coordctl's own process, straight to the agents, so it works
// without coordd) and by StartJob before a launch.
//
// All nodes at once, in three rounds: Ping (reachability and clock offset) +
// CheckNode (the node table; writes the node's token into the shared path), then
// every node reads every token, then every node removes its own. A node that does
// not answer is reported unreachable and the others are checked all the same; a
// node whose mount hangs answers at its probe deadline, so it cannot stall the rest.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/hostfile.h"
#include "common/status.h"
#include "coordinator/agent_client.h"
#include "env_check/cluster.h"

namespace coord::coordinator {

struct ClusterCheckRequest {
  std::vector<HostEntry> hosts;            // node i; node 0 is the master
  std::vector<AgentClient*> clients;       // clients[i] talks to hosts[i]; not owned
  std::string config_json;                 // "" = no job: the node checks' defaults
  std::string config_path = "job spec";    // for messages
  std::map<std::string, std::string> env;  // launch.env, as the ranks will have it
  std::string workdir;                     // the ranks' working directory
  int connect_timeout_ms = 2000;           // Ping: a node that does not answer is unreachable
  // Out, when not null: the agent_id that answered each node's Ping ("" unreachable).
  std::vector<std::string>* agent_ids = nullptr;
};

/// Invalid config JSON is an error (INVALID_ARGUMENT naming the file); everything a
/// node reports, including being unreachable, is in the report.
StatusOr<env_check::ClusterReport> RunClusterCheck(const ClusterCheckRequest& request);

/// How the report names node i: "host:port".
std::string CheckNodeName(const HostEntry& host);

}  // namespace coord::coordinator
