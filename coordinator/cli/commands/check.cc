// coordctl check: every node's env_check table, through its agent, all nodes at
// once, plus the cluster-wide comparisons (one shared filesystem, same versions,
// clocks). Talks to the agents directly, so it works when coordd is down or not
// yet installed. Exit 0 all passed, 1 warnings only, 2 a FAIL or an unreachable
// node (and 2 for bad flags, a bad hosts file or job spec).
#include <unistd.h>

#include <climits>
#include <iostream>
#include <memory>

#include "common/fs.h"
#include "common/hostfile.h"
#include "common/job_spec.h"
#include "coordinator/cli/cli.h"
#include "coordinator/cli/local_cluster.h"
#include "coordinator/cluster_check.h"
#include "coordinator/grpc_agent_client.h"

namespace coord::cli {

namespace po = boost::program_options;

namespace {

std::string CurrentDir() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof(buf)) ? buf : "/";
}

}  // namespace

int RunCheck(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string hosts_path, config_path;
  bool json = false;
  int local_nodes = 1;
  double connect_timeout_s = 2;
  po::options_description opts("check options");
  opts.add_options()
      ("hosts", po::value(&hosts_path), "hosts file, one node per line (default: local mode)")
      ("config,c", po::value(&config_path), "job spec: check what this job needs (shared path, GPUs, its program)")
      ("json", po::bool_switch(&json), "print the report as JSON")
      ("local-nodes", po::value(&local_nodes)->default_value(1),
       "local mode: how many simulated nodes")
      ("connect-timeout", po::value(&connect_timeout_s)->default_value(2),
       "seconds to wait for a node's agent before calling it unreachable");
  po::positional_options_description pos;
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("check"), opts, pos, &vm, &code)) return code;
  (void)global;
  if (connect_timeout_s <= 0 || connect_timeout_s > 600) {
    std::cerr << "coordctl check: --connect-timeout: expected 0..600 seconds\n";
    return kExitUsage;
  }

  coordinator::ClusterCheckRequest req;
  req.connect_timeout_ms = static_cast<int>(connect_timeout_s * 1000);
  if (!config_path.empty()) {
    auto spec = LoadJobSpec(config_path);
    if (!spec.ok()) return ReportError(spec.status());
    req.config_json = spec->spec.json_text;
    req.config_path = config_path;
    req.env = spec->spec.launch.env;
    req.workdir = spec->spec.launch.workdir.empty() ? CurrentDir() : spec->spec.launch.workdir;
  }
  std::unique_ptr<LocalCluster> local;
  std::string hosts_text = "";
  std::string hosts_name = hosts_path;
  if (!hosts_path.empty()) {
    auto text = ReadFile(hosts_path);
    if (!text.ok()) {
      std::cerr << "coordctl: cannot read hosts file " << hosts_path << ": "
                << text.status().message() << "\n";
      return kExitUsage;
    }
    hosts_text = *text;
  } else {
    auto cluster = LocalCluster::Create(local_nodes, "");
    if (!cluster.ok()) return ReportError(cluster.status());
    local = std::move(*cluster);
    hosts_text = local->hosts_text();
    hosts_name = "(local mode)";
  }
  auto hosts = ParseHostfile(hosts_text, hosts_name);
  if (!hosts.ok()) return ReportError(hosts.status());
  req.hosts = *hosts;
  std::vector<std::unique_ptr<coordinator::AgentClient>> clients;
  // Straight to the agents with the user's certificate (local agents: plaintext loopback).
  coordinator::AgentClientFactory connect =
      coordinator::MakeGrpcAgentClientFactory(local ? TlsSettings() : global.tls);
  for (const HostEntry& h : req.hosts) {
    clients.push_back(connect(h));
    req.clients.push_back(clients.back().get());
  }

  auto report = coordinator::RunClusterCheck(req);
  if (!report.ok()) return ReportError(report.status());
  if (json) {
    std::cout << env_check::ClusterReportToJson(*report).dump(2) << "\n";
  } else {
    std::cout << env_check::FormatClusterReport(*report);
  }
  return env_check::ClusterExitCode(*report);
}

}  // namespace coord::cli
