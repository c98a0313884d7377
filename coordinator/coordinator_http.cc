// CoordinatorHttp (see coordinator_http.h): the routes of coordd's HTTP endpoint.
#include "coordinator/coordinator_http.h"

#include "common/clock.h"
#include "common/fs.h"
#include "common/logging.h"
#include "coordinator/job_metrics.h"
#include "coordinator/status_api.h"

namespace coord::coordinator {

StatusOr<std::unique_ptr<CoordinatorHttp>> CoordinatorHttp::Start(const std::string& listen,
                                                                  const RpcSecurity& security,
                                                                  JobManager* jobs,
                                                                  const StatusPageFiles& files) {
  HttpServerOptions o;
  o.listen = listen;
  o.security = security;
  o.program = "coordd";
  std::unique_ptr<CoordinatorHttp> h(new CoordinatorHttp());
  ASSIGN_OR_RETURN(h->server_, HttpServer::Create(o));
  h->AddRoutes(jobs);
  RETURN_IF_ERROR(h->AddPage(files));
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
  AddStatusApiRoutes(server_.get(), jobs);
}

std::string DefaultWebDir() { return Dirname(Dirname(SelfExePath())) + "/share/coord/web"; }

Status CoordinatorHttp::AddPage(const StatusPageFiles& files) {
  std::string web = files.web_dir.empty() ? DefaultWebDir() : files.web_dir;
  if (!IsDirectory(web)) {
    if (!files.web_dir.empty()) return NotFound("--web-dir " + web + ": not a directory");
    LOG_WARN << "coordd: no status page files in " << web
             << " (--web-dir); the JSON API under /api/ still answers";
    server_->Get("/", [web](const HttpRequest&) {
      return HttpResponse::Text(404, "the status page's files are not installed (" + web +
                                         "; coordd --web-dir); /api/jobs answers\n");
    });
    return Status::Ok();
  }
  // The vendor mount first: /static/vendor/... never reaches the page's own directory.
  if (IsDirectory(files.chart_js_dir)) {
    RETURN_IF_ERROR(server_->ServeDirectory("/static/vendor/chart.js/", files.chart_js_dir));
  } else {
    LOG_WARN << "coordd: " << files.chart_js_dir
             << " missing (Debian: libjs-chart.js): the status page has no charts";
  }
  RETURN_IF_ERROR(server_->ServeDirectory("/static/", web));
  server_->Get("/", [](const HttpRequest&) {
    HttpResponse r = HttpResponse::Text(302, "/static/index.html\n");
    r.headers.emplace_back("Location", "/static/index.html");
    return r;
  });
  LOG_INFO << "coordd: status page from " << web;
  return Status::Ok();
}

void CoordinatorHttp::Stop() {
  if (server_) server_->Stop();
}

CoordinatorHttp::~CoordinatorHttp() { Stop(); }

}  // namespace coord::coordinator
