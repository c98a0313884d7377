// AgentServer: an AgentService behind a gRPC server. coord-agent's main, the
// in-process agent of `coordctl` local mode, and tests create it. Create() starts
// serving; Shutdown() stops serving and NEVER kills running jobs (restarting the
// agent must not cost a run). Thread-safe: Shutdown may be called from any
// thread, more than once.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/tls.h"

namespace grpc {
class Server;
}

namespace coord::agent {

class AgentService;
class AgentGrpcService;
class AgentHttp;

struct AgentOptions {
  std::string listen = "0.0.0.0:7071";  // host:port, port 0 = pick one
  std::string state_dir;                // required
  std::string supervisor_path;          // empty: next to this executable
  int heartbeat_ms = 1000;
  int usage_ms = 2000;  // the node's usage rides on a heartbeat this often (0: never)
  int default_grace_ms = 5000;
  int keep_jobs = 50;  // finished jobs whose clean generations' dirs are kept (-1: all)
  int min_free_mb = 64;  // launches refused below this much free in the state dir (0: never)
  std::string cgroup_parent;  // empty: auto-detect; "none" disables cgroups
  RpcSecurity security;       // default plaintext (loopback); coord-agent sets mTLS
  std::string http_listen;    // the HTTP(S) endpoint (/metrics): "" = none; port 0 = pick
  RpcSecurity http_security;  // from HttpServerSecurity (default: plaintext)
};

class AgentServer {
 public:
  static StatusOr<std::unique_ptr<AgentServer>> Create(
      const AgentOptions& options);  // starts serving
  int port() const { return port_; }
  int http_port() const;  // 0 when there is no HTTP endpoint
  const std::string& agent_id() const;
  void Shutdown();  // stops serving; NEVER kills running jobs
  ~AgentServer();   // calls Shutdown

 private:
  AgentServer() = default;

  int port_ = 0;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<AgentGrpcService> grpc_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AgentHttp> http_;
  int lock_fd_ = -1;                     // flock on STATE/agent.lock, held for our lifetime
  std::string cgroup_parent_to_remove_;  // the auto-created parent, removed when empty
  std::mutex shutdown_mu_;               // serializes Shutdown
  bool shut_down_ = false;               // guarded by shutdown_mu_
};

}  // namespace coord::agent
