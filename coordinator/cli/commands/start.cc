// coordctl start: validate the job spec and hosts file here (errors name the
// file, line and JSON path before anything runs), then hand the job to coordd.
// Without --hosts and without a reachable coordd it runs in local mode: an
// in-process coordinator and agents, in the foreground, Ctrl-C kills the job.
#include <unistd.h>

#include <climits>
#include <iostream>

#include "common/fs.h"
#include "common/hostfile.h"
#include "common/job_spec.h"
#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"
#include "coordinator/cli/follow.h"
#include "coordinator/cli/format.h"
#include "coordinator/cli/local_cluster.h"
#include "env_check/check_proto.h"

namespace coord::cli {

namespace po = boost::program_options;

namespace {

struct StartArgs {
  std::string config;
  std::string hosts;
  bool follow = false;
  bool allow_overlap = false;
  bool skip_checks = false;
  int local_nodes = 1;
  std::string state_dir;
  int launch_timeout_s = 120;
};

std::string CurrentDir() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof(buf)) ? buf : "/";
}

// Submits and, if asked, follows. `on_interrupt` decides what Ctrl-C means.
int Submit(CoordinatorClient& client, const StartArgs& a, const std::string& config_text,
           const std::string& hosts_text, const std::string& hosts_path, bool follow,
           bool kill_on_interrupt) {
  coordinator::StartJobRequest req;
  req.set_config_json(config_text);
  req.set_config_path(a.config);
  req.set_hosts_text(hosts_text);
  req.set_hosts_path(hosts_path);
  req.set_workdir(CurrentDir());
  req.set_allow_overlap(a.allow_overlap);
  req.set_skip_checks(a.skip_checks);
  auto reply = client.StartJob(req, a.launch_timeout_s * 1000);
  if (!reply.ok()) return ReportError(reply.status());
  for (const auto& w : reply->warnings()) std::cerr << "coordctl: warning: " << w << "\n";
  if (reply->has_checks()) {
    env_check::ClusterReport checks = env_check::FromProto(reply->checks());
    int check_code = env_check::ClusterExitCode(checks);
    if (reply->job_id().empty()) {
      std::cerr << env_check::FormatClusterReport(checks)
                << "coordctl: not started: the checks above failed on "
                << (check_code == 2 ? "some node" : "the cluster")
                << "; fix them (or start anyway with --skip-checks)\n";
      return kExitJobFailed;
    }
    if (check_code == 1) {
      std::cerr << "coordctl: checks passed with warnings (`coordctl check` shows them)\n";
    }
  }
  const auto& job = reply->status();
  if (job.state() == coordinator::FAILED) {
    std::cerr << "coordctl: " << OneLineSummary(job) << "\n";
    std::cout << reply->job_id() << "\n";
    return kExitJobFailed;
  }
  std::cout << reply->job_id() << "\n" << std::flush;
  if (!follow) return kExitOk;
  std::string job_id = reply->job_id();
  return FollowJob(client, job_id, [&client, job_id, kill_on_interrupt] {
    if (!kill_on_interrupt) {
      std::cerr << "coordctl: detached; the job goes on (`coordctl kill " << job_id
                << "` stops it)\n";
      _exit(kExitOk);
    }
    coordinator::KillJobRequest kill;
    kill.set_job_id(job_id);
    auto r = client.KillJob(kill);
    if (!r.ok()) ReportError(r.status());
  });
}

}  // namespace

int RunStart(const GlobalOptions& global, const std::vector<std::string>& args) {
  StartArgs a;
  po::options_description opts("start options");
  opts.add_options()
      ("config,c", po::value(&a.config)->required(), "job spec (JSON)")
      ("hosts", po::value(&a.hosts), "hosts file, one node per line (node rank = line order)")
      ("follow,f", po::bool_switch(&a.follow), "stream the ranks' logs and wait for the end")
      ("allow-overlap", po::bool_switch(&a.allow_overlap),
       "start even if a running job uses some of these hosts")
      ("skip-checks", po::bool_switch(&a.skip_checks),
       "launch without the node and cluster checks (recorded in the job's journal)")
      ("local-nodes", po::value(&a.local_nodes)->default_value(1),
       "local mode: how many simulated nodes (agents on 127.0.0.1, 127.0.0.2, ...)")
      ("state-dir", po::value(&a.state_dir), "local mode: where state and logs go (default: a new /tmp dir)")
      ("launch-timeout", po::value(&a.launch_timeout_s)->default_value(120),
       "seconds to wait for every rank to start");
  po::positional_options_description pos;
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("start"), opts, pos, &vm, &code)) return code;

  // Validate locally first: the user sees their file's errors with its path.
  auto spec = LoadJobSpec(a.config);
  if (!spec.ok()) return ReportError(spec.status());
  std::string hosts_text;
  if (!a.hosts.empty()) {
    auto text = ReadFile(a.hosts);
    if (!text.ok()) {
      std::cerr << "coordctl: cannot read hosts file " << a.hosts << ": "
                << text.status().message() << "\n";
      return kExitUsage;
    }
    auto parsed = ParseHostfile(*text, a.hosts);
    if (!parsed.ok()) return ReportError(parsed.status());
    hosts_text = *text;
  }

  BlockTerminationSignals();
  CoordinatorClient remote(global.coordinator, global.rpc_timeout_ms, global.tls);
  if (!a.hosts.empty()) {
    return Submit(remote, a, spec->spec.json_text, hosts_text, a.hosts, a.follow, false);
  }
  if (remote.Reachable(300)) {
    std::cerr << "coordctl: a coordinator is running at " << global.coordinator
              << "; name the nodes with --hosts FILE (local mode runs only without one)\n";
    return kExitUsage;
  }
  // Local mode: same code, in this process, in the foreground.
  auto cluster = LocalCluster::Create(a.local_nodes, a.state_dir);
  if (!cluster.ok()) return ReportError(cluster.status());
  std::cerr << "coordctl: local mode: " << a.local_nodes << " node(s), state and logs in "
            << (*cluster)->state_dir() << "\n";
  // The in-process cluster serves plaintext on loopback, whatever certificates exist.
  CoordinatorClient local((*cluster)->coordinator_target(), global.rpc_timeout_ms, TlsSettings());
  return Submit(local, a, spec->spec.json_text, (*cluster)->hosts_text(), "(local mode)", true,
                true);
}

}  // namespace coord::cli
