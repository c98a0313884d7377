// The real NodeProcesses (see node_processes.h): this machine's processes, in
// real time. Stateless, so thread-safe. Runs in coord-agent.
#include "agent/node_processes.h"

#include <signal.h>

namespace coord::agent {
namespace {

class RealNodeProcesses final : public NodeProcesses {
 public:
  explicit RealNodeProcesses(std::string supervisor_path)
      : supervisor_path_(std::move(supervisor_path)) {}

  StatusOr<SpawnedSupervisor> SpawnSupervisor(const std::string& gen_dir) override {
    return agent::SpawnSupervisor(supervisor_path_, gen_dir);
  }
  LaunchAck WaitLaunchAck(const SpawnedSupervisor& supervisor, int timeout_ms) override {
    return agent::WaitLaunchAck(supervisor.ack_fd, timeout_ms);
  }
  void ReapIfOurChild(int pid) override { agent::ReapIfOurChild(pid); }
  uint64_t StartTicks(int pid) override { return ProcStartTicks(pid); }
  bool Alive(const ProcId& proc) override { return ProcAlive(proc.pid, proc.start_ticks); }
  void SigKill(int pid) override {
    if (pid > 0) kill(pid, SIGKILL);
  }
  std::vector<TaggedProc> FindTagged(const std::string& prefix) override {
    return agent::FindTagged(prefix, /*exact=*/false);
  }
  KillOutcome KillGenerations(const std::vector<KillTarget>& targets, int grace_ms) override {
    return agent::KillGenerations(targets, grace_ms);
  }

 private:
  const std::string supervisor_path_;
};

}  // namespace

std::shared_ptr<NodeProcesses> MakeRealNodeProcesses(const std::string& supervisor_path) {
  return std::make_shared<RealNodeProcesses>(supervisor_path);
}

}  // namespace coord::agent
