// AgentServer: option checks, cgroup setup, service + gRPC server wiring.
// Runs in coord-agent (or in-process in coordctl local mode / tests).
#include "agent/agent_server.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "agent/agent_http.h"
#include "agent/agent_service.h"
#include "agent/cgroup.h"
#include "agent/gpu_metrics.h"
#include "agent/grpc_service.h"
#include "agent/node_usage.h"
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
  if (access(abs.c_str(), W_OK) != 0)
    return ErrnoStatus("state dir " + abs + " is not writable", errno);
  return abs;
}

// One agent per state dir: a second one would treat the first one's launches in
// progress as orphans. flock dies with the process, so a crash never leaves a
// stale lock; CLOEXEC keeps supervisors from inheriting it.
StatusOr<int> LockStateDir(const std::string& dir) {
  std::string path = JoinPath(dir, "agent.lock");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (err == EWOULDBLOCK) {
      return FailedPrecondition("state dir " + dir + " is in use by another coord-agent (pid " +
                                std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) + ")");
    }
    return ErrnoStatus("flock " + path, err);
  }
  std::string pid = std::to_string(getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    LOG_WARN << "cannot write " << path << ": " << std::strerror(errno);
  }
  return fd;
}

}  // namespace

StatusOr<std::unique_ptr<AgentServer>> AgentServer::Create(const AgentOptions& options) {
  if (options.heartbeat_ms < 10) return InvalidArgument("heartbeat_ms must be >= 10");
  if (options.default_grace_ms < 0) return InvalidArgument("default_grace_ms must be >= 0");
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(options.listen, &host, &port).WithContext("--listen"));
  AgentServiceOptions so;
  ASSIGN_OR_RETURN(so.state_dir, AbsoluteStateDir(options.state_dir));
  ASSIGN_OR_RETURN(int lock_fd, LockStateDir(so.state_dir));
  struct LockGuard {  // released unless the server takes it over
    int fd;
    ~LockGuard() {
      if (fd >= 0) close(fd);
    }
  } lock{lock_fd};
  so.supervisor_path = options.supervisor_path.empty()
                           ? JoinPath(Dirname(SelfExePath()), "coord-supervisor")
                           : options.supervisor_path;
  if (access(so.supervisor_path.c_str(), X_OK) != 0) {
    return FailedPrecondition("supervisor " + so.supervisor_path + " is not executable (" +
                              std::strerror(errno) + "); pass --supervisor PATH");
  }
  so.heartbeat_ms = options.heartbeat_ms;
  so.default_grace_ms = options.default_grace_ms;
  so.keep_jobs = options.keep_jobs;
  so.min_free_mb = options.min_free_mb;
  // One NVML for the heartbeats' usage samples and /metrics.
  std::shared_ptr<const env_check::System> system = env_check::MakeRealSystem();
  std::shared_ptr<GpuMetrics> gpus = GpuMetrics::Open(system, system->Hostname());
  so.usage_ms = options.usage_ms;
  so.sample_usage = [gpus](NodeUsage* u) { *u = SampleNodeUsage("/proc", gpus.get()); };
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
  std::swap(s->lock_fd_, lock.fd);
  if (options.cgroup_parent.empty()) s->cgroup_parent_to_remove_ = so.cgroup_parent;
  ASSIGN_OR_RETURN(s->service_, AgentService::Create(so));
  s->grpc_service_ = std::make_unique<AgentGrpcService>(s->service_.get());
  auto started = StartGrpcServer(options.listen, {s->grpc_service_.get()}, options.security);
  if (!started.ok()) {
    s->service_->Shutdown();
    return started.status();
  }
  s->server_ = std::move(started->server);
  s->port_ = started->port;
  if (!options.http_listen.empty()) {
    auto http =
        AgentHttp::Start(options.http_listen, options.http_security, s->service_.get(), gpus);
    if (!http.ok()) {
      s->Shutdown();
      return http.status();
    }
    s->http_ = std::move(*http);
  }
  LOG_INFO << "listening on " << host << ":" << s->port_ << " (agent " << s->service_->agent_id()
           << ", state dir " << so.state_dir << ")";
  return s;
}

const std::string& AgentServer::agent_id() const { return service_->agent_id(); }

int AgentServer::http_port() const { return http_ ? http_->port() : 0; }

void AgentServer::Shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (http_) http_->Stop();  // its collectors read the service
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
  if (server_) {
    LOG_INFO << "agent stopped; running jobs keep running under their supervisors";
  }
}

AgentServer::~AgentServer() {
  Shutdown();
  if (lock_fd_ >= 0) close(lock_fd_);
}

}  // namespace coord::agent
