// coordd's HTTP(S) endpoint (common/http_server.h): /metrics now (job_metrics.h and the
// coordd process), the status page's JSON API and files next: they add their routes
// in AddRoutes (coordinator_http.cc), next to /metrics. Read-only by design: starting
// and killing jobs stays in coordctl over gRPC. Thread-safe; Stop() before the
// JobManager it reads goes away.
#pragma once

#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/status.h"
#include "coordinator/job_manager.h"

namespace coord::coordinator {

class CoordinatorHttp {
 public:
  // Binds `listen` ("host:port", port 0: pick one) with `security` (tls.h's rule, as
  // ServerSecurity chose it) and serves.
  static StatusOr<std::unique_ptr<CoordinatorHttp>> Start(const std::string& listen,
                                                          const RpcSecurity& security,
                                                          JobManager* jobs);
  ~CoordinatorHttp();  // Stop()
  int port() const { return server_->port(); }
  // Instrumented metrics (Registry::AddCounter...) appear on /metrics too.
  metrics::Registry& registry() { return registry_; }
  void Stop();

 private:
  CoordinatorHttp() = default;
  void AddRoutes(JobManager* jobs);

  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace coord::coordinator
