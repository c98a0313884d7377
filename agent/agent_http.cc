// AgentHttp (see agent_http.h): the routes and collectors of the agent's HTTP endpoint.
#include "agent/agent_http.h"

#include "agent/agent_service.h"
#include "agent/node_metrics.h"

namespace coord::agent {

StatusOr<std::unique_ptr<AgentHttp>> AgentHttp::Start(const std::string& listen,
                                                      const RpcSecurity& security,
                                                      AgentService* service,
                                                      std::shared_ptr<GpuMetrics> gpus_in) {
  HttpServerOptions o;
  o.listen = listen;
  o.security = security;
  o.program = "coord-agent";
  std::unique_ptr<AgentHttp> h(new AgentHttp());
  ASSIGN_OR_RETURN(h->server_, HttpServer::Create(o));
  h->gpus_ = std::move(gpus_in);
  GpuMetrics* gpus = h->gpus_.get();
  metrics::Registry& r = h->registry_;
  r.AddCollector([](metrics::MetricsPage* page) { CollectNodeMetrics("/proc", page); });
  if (gpus != nullptr) {
    r.AddCollector([gpus](metrics::MetricsPage* page) { gpus->Collect(page); });
  }
  r.AddCollector([service](metrics::MetricsPage* page) {
    CollectRankMetrics(service->RunningRanks(), "/proc", page);
  });
  r.AddCollector(metrics::CollectProcessMetrics);
  h->server_->Get("/metrics", [&r](const HttpRequest&) {
    HttpResponse out = HttpResponse::Text(200, r.Render());
    out.content_type = metrics::kContentType;
    return out;
  });
  RETURN_IF_ERROR(h->server_->Start());
  return h;
}

void AgentHttp::Stop() {
  if (server_) server_->Stop();
}

AgentHttp::~AgentHttp() { Stop(); }

}  // namespace coord::agent
