// CoordinatorServer: coordd in one object (JobManager + journal + gRPC server), for the
// coordd binary, coordctl's local mode and tests. Create() replays the journal and starts
// serving; Shutdown() stops serving but never kills jobs. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "common/tls.h"
#include "coordinator/agent_client.h"
#include "coordinator/coordinator_http.h"
#include "coordinator/job_manager.h"

namespace grpc {
class Server;
}

namespace coord::coordinator {

class CoordinatorGrpcService;
class CoordinatorHttp;

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:7070";  // port 0 = pick one
  std::string state_dir;                  // required: journal lives here
  int connect_timeout_ms = 5000;          // agent must answer Ping within this at start
  int launch_timeout_ms = 60000;
  int heartbeat_ms = 500;            // asked of agents' Watch
  int missed_heartbeats = 4;         // then the node is lost: 2 s of silence by default
  StragglerOptions straggler;        // straggler detection (straggler.h)
  int journal_compact_mb = 16;       // compact the journal past this size (journal.h)
  int check_reuse_s = 300;           // passing checks reused this long (0: never)
  int keep_finished_jobs = 1000;     // finished jobs remembered beyond an hour after
  AgentClientFactory agent_factory;  // empty: gRPC clients, secured by agent_tls
  TlsSettings agent_tls;             // how coordd reaches agents (tls.h's rule)
  RpcSecurity security;              // how coordd serves coordctl (default: plaintext)
  /// The HTTP(S) endpoint (/metrics): "" = none; else host:port (port 0 = pick one).
  std::string http_listen;
  RpcSecurity http_security;  // from HttpServerSecurity (default: plaintext)
  StatusPageFiles page;       // the status page's files (coordinator_http.h)
};

class CoordinatorServer {
 public:
  /// Replays the journal in options.state_dir and starts serving on options.listen.
  static StatusOr<std::unique_ptr<CoordinatorServer>> Create(const CoordinatorOptions& options);
  /// The bound port (the real one when port 0 was asked for).
  int port() const { return port_; }
  /// The HTTP endpoint's bound port; 0 when there is none.
  int http_port() const;
  /// For in-process use and tests.
  JobManager* jobs() { return jobs_.get(); }
  /// Stops serving (in-flight calls get a short grace) and supervision; does NOT kill jobs.
  /// Idempotent.
  void Shutdown();
  ~CoordinatorServer();

 private:
  CoordinatorServer() = default;

  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<CoordinatorGrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CoordinatorHttp> http_;
  int port_ = 0;
};

}  // namespace coord::coordinator
