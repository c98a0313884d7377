// CoordinatorHttp (see coordinator_http.h): the routes of coordd's HTTP endpoint.
#include "coordinator/coordinator_http.h"

#include "common/clock.h"
#include "coordinator/job_metrics.h"

namespace coord::coordinator {

StatusOr<std::unique_ptr<CoordinatorHttp>> CoordinatorHttp::Start(const std::string& listen,
                                                                  const RpcSecurity& security,
                                                                  JobManager* jobs) {
  HttpServerOptions o;
  o.listen = listen;
  o.security = security;
  o.program = "coordd";
  std::unique_ptr<CoordinatorHttp> h(new CoordinatorHttp());
  ASSIGN_OR_RETURN(h->server_, HttpServer::Create(o));
  h->AddRoutes(jobs);
  RETURN_IF_ERROR(h->server_->Start());
  return h;
}

void CoordinatorHttp::AddRoutes(JobManager* jobs) {
  registry_.AddCollector(
      [jobs](metrics::MetricsPage* page) { CollectJobMetrics(jobs->Snapshot(), WallMs(), page); });
  registry_.AddCollector(metrics::CollectProcessMetrics);
  server_->Get("/metrics", [this](const HttpRequest&) {
    HttpResponse r = HttpResponse::Text(200, registry_.Render());
    r.content_type = metrics::kContentType;
    return r;
  });
}

void CoordinatorHttp::Stop() {
  if (server_) server_->Stop();
}

CoordinatorHttp::~CoordinatorHttp() { Stop(); }

}  // namespace coord::coordinator
