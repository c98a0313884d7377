// The agent's HTTP(S) endpoint (common/http_server.h): /metrics with the node's CPU,
// memory, network and disk counters (node_metrics.h, node_exporter's names), its GPUs
// (gpu_metrics.h, DCGM exporter's names), each running rank's CPU time and memory,
// and the agent process itself. Read-only. Thread-safe; Stop() before the
// AgentService it reads goes away.
#pragma once

#include <memory>
#include <string>

#include "agent/gpu_metrics.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/status.h"

namespace coord::agent {

class AgentService;

class AgentHttp {
 public:
  // Binds `listen` ("host:port", port 0: pick one) with `security` and serves. `gpus`:
  // the agent's NVML (no GPU metrics without a driver, or when null).
  static StatusOr<std::unique_ptr<AgentHttp>> Start(const std::string& listen,
                                                    const RpcSecurity& security,
                                                    AgentService* service,
                                                    std::shared_ptr<GpuMetrics> gpus);
  ~AgentHttp();  // Stop()
  int port() const { return server_->port(); }
  metrics::Registry& registry() { return registry_; }
  void Stop();

 private:
  AgentHttp() = default;

  metrics::Registry registry_;
  std::shared_ptr<GpuMetrics> gpus_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace coord::agent
