// Local mode: an in-process coordinator and N in-process agents on this machine,
// the same code paths as the daemons (they talk gRPC over loopback). Agent i
// listens on 127.0.0.(i+1), so each simulated node has its own address, as
// Linux routes all of 127.0.0.0/8 to the loopback device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/agent_server.h"
#include "common/status.h"
#include "coordinator/coordinator_server.h"

namespace coord::cli {

class LocalCluster {
 public:
  // state_dir: empty = a fresh /tmp/coord-local-XXXXXX.
  static StatusOr<std::unique_ptr<LocalCluster>> Create(int num_nodes, std::string state_dir);
  ~LocalCluster();

  std::string coordinator_target() const;
  // A hosts file naming the local agents, one per line.
  std::string hosts_text() const;
  const std::string& state_dir() const { return state_dir_; }

 private:
  LocalCluster() = default;

  std::string state_dir_;
  std::vector<std::unique_ptr<agent::AgentServer>> agents_;
  std::vector<std::string> agent_targets_;
  std::unique_ptr<coordinator::CoordinatorServer> coordinator_;
};

}  // namespace coord::cli
