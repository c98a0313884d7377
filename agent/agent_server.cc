// AgentServer: option checks, cgroup setup, service + gRPC server wiring.
// Runs in coord-agent (or in-process in coordctl local mode / tests).
#include "agent/agent_server.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "agent/agent_service.h"
#include "agent/cgroup.h"
#include "agent/grpc_service.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/rpc_util.h"

namespace coord::agent {
namespace {

StatusOr<std::string> AbsoluteStateDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("--state-dir is required");
  RETURN_IF_ERROR(MakeDirs(dir, 0700).WithContext("state dir"));
  char buf[PATH_MAX];
  if (!realpath(dir.c_str(), buf)) return ErrnoStatus("realpath " + dir, errno);
  std::string abs = buf;
  if (access(abs.c_str(), W_OK) != 0) return ErrnoStatus("state dir " + abs + " is not writable", errno);
  return abs;
}

}  // namespace

StatusOr<std::unique_ptr<AgentServer>> AgentServer::Create(const AgentOptions& options) {
  if (options.heartbeat_ms < 10) return InvalidArgument("heartbeat_ms must be >= 10");
  if (options.default_grace_ms < 0) return InvalidArgument("default_grace_ms must be >= 0");
  AgentServiceOptions so;
  ASSIGN_OR_RETURN(so.state_dir, AbsoluteStateDir(options.state_dir));
  so.supervisor_path = options.supervisor_path.empty()
                           ? JoinPath(Dirname(SelfExePath()), "coord-supervisor")
                           : options.supervisor_path;
  if (access(so.supervisor_path.c_str(), X_OK) != 0) {
    return FailedPrecondition("supervisor " + so.supervisor_path + " is not executable (" +
                              std::strerror(errno) + "); pass --supervisor PATH");
  }
  so.heartbeat_ms = options.heartbeat_ms;
  so.default_grace_ms = options.default_grace_ms;
  auto parent = SetUpCgroupParent(options.cgroup_parent, AgentTag(so.state_dir));
  if (parent.ok()) {
    so.cgroup_parent = *parent;
    if (!so.cgroup_parent.empty()) {
      LOG_INFO << "ranks go into cgroups under " << so.cgroup_parent;
    }
  } else {
    LOG_WARN << "cgroups unavailable (" << parent.status().message()
             << "); falling back to process groups + COORD_JOB_TAG scans";
  }
  std::unique_ptr<AgentServer> s(new AgentServer());
  if (options.cgroup_parent.empty()) s->cgroup_parent_to_remove_ = so.cgroup_parent;
  ASSIGN_OR_RETURN(s->service_, AgentService::Create(so));
  s->grpc_service_ = std::make_unique<AgentGrpcService>(s->service_.get());
  auto started = StartGrpcServer(options.listen, {s->grpc_service_.get()});
  if (!started.ok()) {
    s->service_->Shutdown();
    return started.status();
  }
  s->server_ = std::move(started->server);
  s->port_ = started->port;
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  LOG_INFO << "listening on " << host << ":" << s->port_ << " (agent " << s->service_->agent_id()
           << ", state dir " << so.state_dir << ")";
  return s;
}

const std::string& AgentServer::agent_id() const { return service_->agent_id(); }

void AgentServer::Shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  // Streams first (they return once the hub is closed), then the server. gRPC's
  // Shutdown waits out the whole deadline while a client still holds an idle
  // connection, so keep it short: unary calls finish in well under that.
  if (service_) service_->Shutdown();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  }
  // Our default parent cgroup goes when empty; with jobs running rmdir fails
  // (EBUSY) and it stays for the restarted agent.
  if (!cgroup_parent_to_remove_.empty()) rmdir(cgroup_parent_to_remove_.c_str());
  LOG_INFO << "agent stopped; running jobs keep running under their supervisors";
}

AgentServer::~AgentServer() { Shutdown(); }

}  // namespace coord::agent
