// coordd's HTTP(S) endpoint (common/http_server.h): /metrics (job_metrics.h and the
// coordd process), the status page's JSON API under /api/ (status_api.h) and its files
// (web/ of the source tree, installed as share/coord/web) under /static/, with Chart.js
// (Debian's libjs-chart.js) under /static/vendor/chart.js/; / opens the jobs list.
// Read-only by design: starting and killing jobs stays in coordctl over gRPC.
// Thread-safe; Stop() before the JobManager it reads goes away.
#pragma once

#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/status.h"
#include "coordinator/job_manager.h"

namespace coord::coordinator {

// Where the status page's files are.
struct StatusPageFiles {
  // The page (index.html, job.html, ...). "": DefaultWebDir(), and no page (the API
  // still answers) when that is missing; a directory given that is missing is an error.
  std::string web_dir;
  // Chart.js; missing: the page shows its tables without charts.
  std::string chart_js_dir = "/usr/share/javascript/chart.js";
};

// ../share/coord/web beside the running binary: bin/../share/coord/web, true both of the
// build tree (CMake copies web/ there) and of an install prefix.
std::string DefaultWebDir();

class CoordinatorHttp {
 public:
  // Binds `listen` ("host:port", port 0: pick one) with `security` (tls.h's rule, as
  // ServerSecurity chose it) and serves.
  static StatusOr<std::unique_ptr<CoordinatorHttp>> Start(const std::string& listen,
                                                          const RpcSecurity& security,
                                                          JobManager* jobs,
                                                          const StatusPageFiles& files = {});
  ~CoordinatorHttp();  // Stop()
  int port() const { return server_->port(); }
  // Instrumented metrics (Registry::AddCounter...) appear on /metrics too.
  metrics::Registry& registry() { return registry_; }
  void Stop();

 private:
  CoordinatorHttp() = default;
  void AddRoutes(JobManager* jobs);
  Status AddPage(const StatusPageFiles& files);

  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace coord::coordinator
