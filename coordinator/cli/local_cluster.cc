// LocalCluster: builds the in-process coordinator and agents for local mode.
#include "coordinator/cli/local_cluster.h"

#include <stdlib.h>

#include "common/fs.h"

namespace coord::cli {

StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Create(int num_nodes, std::string state_dir) {
  if (num_nodes < 1 || num_nodes > 64) {
    return InvalidArgument("--local-nodes: expected 1..64, got " + std::to_string(num_nodes));
  }
  if (state_dir.empty()) {
    char tmpl[] = "/tmp/coord-local-XXXXXX";
    if (!mkdtemp(tmpl)) return ErrnoStatus("mkdtemp /tmp/coord-local-XXXXXX", errno);
    state_dir = tmpl;
  }
  RETURN_IF_ERROR(MakeDirs(state_dir));
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  cluster->state_dir_ = state_dir;
  for (int i = 0; i < num_nodes; ++i) {
    agent::AgentOptions opts;
    std::string addr = "127.0.0." + std::to_string(i + 1);
    opts.listen = addr + ":0";
    opts.state_dir = JoinPath(state_dir, "agent-" + std::to_string(i));
    RETURN_IF_ERROR(MakeDirs(opts.state_dir));
    ASSIGN_OR_RETURN(auto agent, agent::AgentServer::Create(opts));
    cluster->agent_targets_.push_back(addr + ":" + std::to_string(agent->port()));
    cluster->agents_.push_back(std::move(agent));
  }
  coordinator::CoordinatorOptions copts;
  copts.listen = "127.0.0.1:0";
  copts.state_dir = JoinPath(state_dir, "coordd");
  RETURN_IF_ERROR(MakeDirs(copts.state_dir));
  ASSIGN_OR_RETURN(cluster->coordinator_, coordinator::CoordinatorServer::Create(copts));
  return cluster;
}

LocalCluster::~LocalCluster() {
  if (coordinator_) coordinator_->Shutdown();
  for (auto& a : agents_) a->Shutdown();
}

std::string LocalCluster::coordinator_target() const {
  return "127.0.0.1:" + std::to_string(coordinator_->port());
}

std::string LocalCluster::hosts_text() const {
  std::string text = "# local mode: in-process agents\n";
  for (const auto& t : agent_targets_) text += t + "\n";
  return text;
}

}  // namespace coord::cli
