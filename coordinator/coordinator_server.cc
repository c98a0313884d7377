// CoordinatorServer (see coordinator_server.h): wiring only. Destruction order matters:
// the HTTP and gRPC servers stop before the JobManager their handlers call into.
#include "coordinator/coordinator_server.h"

#include "common/logging.h"
#include "common/rpc_util.h"
#include "coordinator/coordinator_http.h"
#include "coordinator/grpc_agent_client.h"
#include "coordinator/grpc_service.h"

namespace coord::coordinator {

// In-flight RPCs get this long to finish before they are cancelled. Short, because
// gRPC waits out the whole deadline while any client holds an idle connection,
// and a cancelled follower (coordctl logs -f) only has to reconnect.
constexpr int kShutdownGraceMs = 300;

StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Create(
    const CoordinatorOptions& options) {
  JobManagerOptions jm;
  jm.state_dir = options.state_dir;
  jm.connect_timeout_ms = options.connect_timeout_ms;
  jm.launch_timeout_ms = options.launch_timeout_ms;
  jm.heartbeat_ms = options.heartbeat_ms;
  jm.straggler = options.straggler;
  jm.journal_compact_bytes = static_cast<uint64_t>(options.journal_compact_mb) << 20;
  jm.keep_finished_jobs = options.keep_finished_jobs;
  jm.check_reuse_ms = static_cast<int64_t>(options.check_reuse_s) * 1000;
  jm.missed_heartbeats = options.missed_heartbeats;
  jm.agent_factory =
      options.agent_factory ? options.agent_factory : MakeGrpcAgentClientFactory(options.agent_tls);
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  ASSIGN_OR_RETURN(s->jobs_, JobManager::Create(jm));
  s->service_ = std::make_unique<CoordinatorGrpcService>(s->jobs_.get());
  ASSIGN_OR_RETURN(StartedServer started, StartGrpcServer(options.listen, {s->service_.get()}, options.security));
  s->server_ = std::move(started.server);
  s->port_ = started.port;
  if (!options.http_listen.empty()) {
    ASSIGN_OR_RETURN(s->http_, CoordinatorHttp::Start(options.http_listen, options.http_security,
                                                      s->jobs_.get(), options.page));
  }
  return s;
}

int CoordinatorServer::http_port() const { return http_ ? http_->port() : 0; }

void CoordinatorServer::Shutdown() {
  if (http_) http_->Stop();
  // Before the gRPC server waits for its handlers: a StartJob may be dialling nodes.
  if (jobs_) jobs_->BeginShutdown();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(kShutdownGraceMs));
    server_->Wait();
    server_.reset();
  }
  if (jobs_) jobs_->Shutdown();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace coord::coordinator
