// Network checks: the master's rendezvous port is free before the job binds it,
// and every peer's host name resolves here (a rank that cannot resolve the
// master hangs in rendezvous instead of failing).
#include <string>

#include "env_check/check.h"
#include "env_check/checks/result.h"

namespace coord::env_check {
namespace {

CheckResult MasterPortFree(const CheckContext& ctx, const System& sys) {
  if (!ctx.is_master_node || ctx.master_port <= 0)
    return Result("master_port_free", true, Severity::kInfo,
                  "not the master node or no fixed port");
  std::string port = std::to_string(ctx.master_port);
  bool free = sys.PortFree(ctx.master_port);
  return Result("master_port_free", free, Severity::kFail,
                free ? "port " + port + " free" : "port " + port + " in use",
                "port " + port + " free on the master node",
                "another process listens on " + port + " (`ss -ltnp sport = :" + port +
                    "`); stop it or choose another launch.master_port");
}

CheckResult PeerHostsResolve(const CheckContext& ctx, const System& sys) {
  CheckResult r =
      Result("peer_hosts_resolve", true, Severity::kFail, "", "every peer host name resolves",
             "add the missing names to DNS or /etc/hosts on this node");
  if (ctx.peer_hosts.empty()) {
    r.severity = Severity::kInfo;
    r.found = "no peers given";
    return r;
  }
  std::string bad;
  for (const std::string& host : ctx.peer_hosts) {
    StatusOr<std::string> addr = sys.Resolve(host);
    if (!addr.ok()) bad += (bad.empty() ? "" : ", ") + host;
  }
  r.passed = bad.empty();
  r.found = bad.empty() ? std::to_string(ctx.peer_hosts.size()) + " peers resolve"
                        : "cannot resolve: " + bad;
  return r;
}

}  // namespace

const std::vector<Check>& NetworkChecks() {
  static const std::vector<Check> k = {
      {"master_port_free", "the master port is free on the master node", MasterPortFree},
      {"peer_hosts_resolve", "every peer's host name resolves", PeerHostsResolve},
  };
  return k;
}

}  // namespace coord::env_check
