// Rank layout and validation of a StartJob request (see job_plan.h).
#include "coordinator/job_plan.h"

#include <algorithm>
#include <cctype>

#include "common/job_spec.h"

namespace coord::coordinator {
namespace {

// Parse errors keep the parser's message but are always INVALID_ARGUMENT: they are the
// submitter's to fix, whatever code the parser chose (ResolveHosts may say NOT_FOUND).
Status AsInvalidArgument(const Status& st) {
  if (st.ok() || st.code() == StatusCode::kInvalidArgument) return st;
  return InvalidArgument(st.message());
}

std::string OrDefault(const std::string& s, const std::string& fallback) {
  return s.empty() ? fallback : s;
}

// nproc: launch.nproc_per_node, else the hosts' common slots, else 1.
StatusOr<int> ChooseNproc(const LaunchSpec& launch, const std::vector<HostEntry>& hosts,
                          const std::string& hosts_path, std::vector<std::string>* warnings) {
  int nproc = launch.nproc_per_node;
  if (nproc <= 0) {
    int common = hosts.front().slots;
    for (const HostEntry& h : hosts) {
      if (h.slots != common) common = -1;
    }
    nproc = common > 0 ? common : 1;
    if (common < 0) {
      warnings->push_back(hosts_path +
                          ": hosts give different (or no) slots; running 1 rank per node "
                          "(set launch.nproc_per_node to choose)");
    }
  }
  for (const HostEntry& h : hosts) {
    if (h.slots > 0 && nproc > h.slots) {
      return InvalidArgument(hosts_path + ":" + std::to_string(h.line) + ": " + h.host +
                             " has slots=" + std::to_string(h.slots) + " but the job runs " +
                             std::to_string(nproc) + " ranks per node (launch.nproc_per_node)");
    }
  }
  return nproc;
}

StatusOr<PlanResult> BuildPlanFromHosts(const StartJobRequest& request,
                                        const std::vector<HostEntry>& hosts);

}  // namespace

std::string SanitizeJobName(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out.push_back(ok ? c : '-');
    if (out.size() >= 64) break;
  }
  // A leading '.' or '-' would make odd file names and look like a flag.
  while (!out.empty() && (out[0] == '.' || out[0] == '-')) out.erase(0, 1);
  return out.empty() ? "job" : out;
}

std::string DescribeHost(const HostEntry& host, const std::string& hosts_path) {
  return host.Target() + " (" + hosts_path + ":" + std::to_string(host.line) + ")";
}

StatusOr<PlanResult> BuildPlan(const StartJobRequest& request, bool resolve_hosts) {
  std::string hosts_path = OrDefault(request.hosts_path(), "hosts");
  StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(request.hosts_text(), hosts_path);
  if (!hosts.ok()) return AsInvalidArgument(hosts.status());
  if (resolve_hosts) RETURN_IF_ERROR(AsInvalidArgument(ResolveHosts(*hosts, hosts_path)));
  return BuildPlanFromHosts(request, *hosts);
}

namespace {

StatusOr<PlanResult> BuildPlanFromHosts(const StartJobRequest& request,
                                        const std::vector<HostEntry>& hosts) {
  PlanResult out;
  JobPlan& plan = out.plan;
  plan.config_path = OrDefault(request.config_path(), "config");
  plan.hosts_path = OrDefault(request.hosts_path(), "hosts");
  if (hosts.empty()) return InvalidArgument(plan.hosts_path + ": no hosts");
  StatusOr<JobSpecResult> spec = ParseJobSpec(request.config_json(), plan.config_path);
  if (!spec.ok()) return AsInvalidArgument(spec.status());
  const LaunchSpec& launch = spec->spec.launch;
  out.warnings = spec->warnings;

  ASSIGN_OR_RETURN(plan.nproc_per_node, ChooseNproc(launch, hosts, plan.hosts_path, &out.warnings));
  plan.name = SanitizeJobName(spec->spec.name);
  plan.config_json = request.config_json();
  plan.hosts_text = request.hosts_text();
  plan.workdir = launch.workdir.empty() ? request.workdir() : launch.workdir;
  plan.allow_overlap = request.allow_overlap();
  plan.skip_checks = request.skip_checks();
  const int n = static_cast<int>(hosts.size());
  if (launch.min_nodes > n) {
    return InvalidArgument(plan.config_path + ": launch.nnodes asks for at least " +
                           std::to_string(launch.min_nodes) + " nodes but " + plan.hosts_path +
                           " lists " + std::to_string(n) + "; add hosts or lower launch.nnodes");
  }
  plan.max_nodes = launch.max_nodes > 0 ? std::min(launch.max_nodes, n) : n;
  plan.min_nodes = launch.min_nodes > 0 ? launch.min_nodes : plan.max_nodes;
  if (launch.max_nodes > n) {
    out.warnings.push_back(plan.config_path + ": launch.nnodes allows up to " +
                           std::to_string(launch.max_nodes) + " nodes; " + plan.hosts_path +
                           " lists " + std::to_string(n) + ", so the job runs on " +
                           std::to_string(n));
  }
  plan.pool = hosts;
  SetNodes(&plan, std::vector<HostEntry>(hosts.begin(), hosts.begin() + plan.max_nodes));
  plan.master_port = launch.master_port;
  plan.env = launch.env;
  plan.kill_grace_ms = launch.kill_grace_ms > 0 ? launch.kill_grace_ms : 5000;
  plan.max_restarts = launch.max_restarts;
  plan.restart_backoff_ms = launch.restart_backoff_ms;
  plan.hang_timeout_ms = launch.hang_timeout_s * 1000;
  plan.startup_timeout_ms = launch.startup_timeout_s * 1000;
  if (!launch.command.empty()) {
    plan.argv = launch.command;
  } else if (!request.config_path().empty()) {
    // No launch.command: the built-in trainer, reading the same spec file (shared mount).
    plan.argv = {"gpt-rank", "--config", request.config_path()};
  } else {
    return InvalidArgument(plan.config_path +
                           ": launch.command is not set and there is no config path to give "
                           "gpt-rank; set launch.command");
  }
  return out;
}

}  // namespace

void SetNodes(JobPlan* plan, std::vector<HostEntry> hosts) {
  plan->hosts = std::move(hosts);
  plan->world_size = static_cast<int>(plan->hosts.size()) * plan->nproc_per_node;
  plan->master_addr = plan->hosts.empty() ? "" : plan->hosts.front().host;
}

Relayout ChooseNodes(const JobPlan& plan, const std::set<std::string>& bad,
                     const std::vector<HostEntry>& spares) {
  Relayout out;
  size_t next_spare = 0;
  std::vector<HostEntry> kept;
  std::vector<std::string> missing;
  for (const HostEntry& h : plan.hosts) {
    if (!bad.count(h.Target())) {
      kept.push_back(h);
    } else if (next_spare < spares.size()) {
      const HostEntry& spare = spares[next_spare++];
      out.replaced.push_back(h.Target() + " by " + spare.Target());
      kept.push_back(spare);
    } else {
      missing.push_back(h.Target());
    }
  }
  if (missing.empty()) {
    out.hosts = std::move(kept);
  } else if (static_cast<int>(kept.size()) >= plan.min_nodes) {
    out.dropped = std::move(missing);
    out.hosts = std::move(kept);
  } else {
    out.waiting_for = std::move(missing);
    out.hosts = plan.hosts;
    out.replaced.clear();
  }
  return out;
}

std::vector<int> RanksOfNode(const JobPlan& plan, int node_rank) {
  std::vector<int> ranks;
  for (int local = 0; local < plan.nproc_per_node; ++local) {
    ranks.push_back(node_rank * plan.nproc_per_node + local);
  }
  return ranks;
}

coord::agent::LaunchRequest MakeLaunchRequest(const JobPlan& plan, const std::string& job_id,
                                              int generation, int node_rank, int master_port) {
  coord::agent::LaunchRequest r;
  r.set_job_id(job_id);
  r.set_generation(generation);
  r.set_node_rank(node_rank);
  r.set_num_nodes(static_cast<int>(plan.hosts.size()));
  r.set_world_size(plan.world_size);
  for (int rank : RanksOfNode(plan, node_rank)) r.add_ranks(rank);
  r.set_master_addr(plan.master_addr);
  r.set_master_port(master_port);
  for (const std::string& a : plan.argv) r.add_argv(a);
  for (const auto& [k, v] : plan.env) (*r.mutable_env())[k] = v;
  r.set_workdir(plan.workdir);
  r.set_max_restarts(plan.max_restarts);
  r.set_node_name(plan.hosts[static_cast<size_t>(node_rank)].host);
  return r;
}

}  // namespace coord::coordinator
