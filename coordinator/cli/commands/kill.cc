// coordctl kill: the replacement for all-kill.sh. Stops every process of a job
// on every node (SIGTERM, grace, SIGKILL, verified by each agent) and says
// which nodes could not confirm that nothing is left.
//
// --ssh is the last resort for when coordd or the agents are down: the same
// kill over SSH on every host of a hosts file, finding the job's processes by
// the COORD_JOB_ID the agent put in their environment (never by process name).
#include <iostream>

#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"
#include "coordinator/cli/ssh_hosts.h"
#include "playbooks/runner/playbook_parser.h"

namespace coord::cli {

namespace po = boost::program_options;

namespace {

// One task, as a playbook so it gets the runner's parallel hosts, deadlines and
// report. Processes are matched by an exact environment entry: COORD_JOB_ID=JOB,
// or for no job any COORD_JOB_TAG (every rank an agent started). `grep -z`
// reads each /proc/PID/environ as NUL-separated records; -F -x: the whole entry,
// literally. The probe (`unless`) makes a clean host "ok", a kill "changed".
constexpr char kSshKillPlaybook[] = R"yaml(
- name: kill over SSH
  hosts: all
  become: true
  tasks:
    - name: Kill the job's processes
      unless: 'test -z "$(pids)"'
      timeout_s: 120
      shell: |
        set -u
        pids
        kill -TERM $(pids) 2>/dev/null
        i=0
        while [ -n "$(pids)" ] && [ $i -lt $(( {{ grace_ms }} / 100 )) ]; do sleep 0.1; i=$((i + 1)); done
        left=$(pids)
        [ -n "$left" ] && kill -KILL $left 2>/dev/null
        for i in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(pids)" ] && break; sleep 0.1; done
        left=$(pids)
        if [ -n "$left" ]; then echo "still running after SIGKILL: $left" >&2; exit 1; fi
        echo "killed $n process(es)"
)yaml";

// Defines `pids` (prints the matching PIDs, one per line, never our own) and
// counts them into n; prepended to the probe and the action.
std::string PidsFunction(const std::string& job) {
  std::string match =
      job.empty() ? "grep -lz '^COORD_JOB_TAG='" : "grep -lzxF 'COORD_JOB_ID=" + job + "'";
  return "pids() { " + match +
         " /proc/[0-9]*/environ 2>/dev/null | sed -n 's#^/proc/\\([0-9]*\\)/environ$#\\1#p' | "
         "grep -vx \"$$\"; }; n=$(pids | wc -l); ";
}

bool SafeJobId(const std::string& job) {
  for (char c : job) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

int KillOverSsh(const std::string& job_id, const std::string& hosts_path, double grace_s,
                const SshFlags& ssh, bool json) {
  if (!SafeJobId(job_id)) {
    std::cerr << "coordctl kill: job id '" << job_id
              << "': expected letters, digits, '-', '_' and '.' only\n";
    return kExitUsage;
  }
  auto hosts = LoadHostfile(hosts_path);
  if (!hosts.ok()) return ReportError(hosts.status());
  auto playbook = playbooks::ParsePlaybook(kSshKillPlaybook, "(kill --ssh)");
  if (!playbook.ok()) return ReportError(playbook.status());
  // The `pids` function goes in front of the probe and the action (here rather
  // than in the YAML: it holds the job id, and shell quoting inside YAML is error-prone).
  std::string fn = PidsFunction(job_id);
  playbooks::Task& task = playbook->plays[0].tasks[0];
  auto unless = playbooks::Template::Parse(fn + task.unless->text());
  auto action = playbooks::Template::Parse(fn + task.command.text());
  if (!unless.ok() || !action.ok()) return ReportError(Internal("kill --ssh: bad template"));
  task.unless = *unless;
  task.command = *action;

  playbooks::RunOptions run;
  run.forks = ssh.forks;
  run.max_fail_percent = 100;  // a kill goes on everywhere it can
  run.vars["grace_ms"] = std::to_string(static_cast<int>(grace_s * 1000));
  std::ostream& note = json ? std::cerr : std::cout;
  note << "killing " << (job_id.empty() ? "every Coord job's processes" : "job " + job_id)
       << " over SSH on " << hosts->size() << " host(s)\n";
  std::unique_ptr<playbooks::Reporter> reporter = MakeReporter(json);
  auto result = playbooks::RunPlaybook(*playbook, InventoryFromHosts(*hosts, ssh), run,
                                       MakeConnector(ssh), reporter.get());
  if (!result.ok()) return ReportError(result.status());
  return playbooks::RunSucceeded(*result) ? kExitOk : kExitJobFailed;
}

}  // namespace

int RunKill(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string job_id, hosts_path;
  double grace_s = -1;
  bool over_ssh = false, json = false;
  SshFlags ssh;
  po::options_description opts("kill options");
  opts.add_options()("job", po::value(&job_id),
                     "job id (default: the running job; with --ssh: every Coord job)")(
      "grace", po::value(&grace_s),
      "seconds between SIGTERM and SIGKILL (default: the job's launch.kill_grace_s; 5 with --ssh)")(
      "ssh", po::bool_switch(&over_ssh), "kill over SSH, without coordd or agents (needs --hosts)")(
      "hosts", po::value(&hosts_path), "with --ssh: the hosts file")(
      "json", po::bool_switch(&json), "with --ssh: print the result as JSON");
  po::options_description ssh_opts("SSH options (with --ssh)");
  AddSshOptions(&ssh_opts, &ssh);
  opts.add(ssh_opts);
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("kill"), opts, pos, &vm, &code)) return code;
  if (vm.count("grace") && (grace_s < 0 || grace_s > 3600)) {
    std::cerr << "coordctl kill: --grace: expected 0..3600 seconds\n";
    return kExitUsage;
  }
  if (over_ssh) {
    if (hosts_path.empty()) {
      std::cerr << "coordctl kill --ssh: expected --hosts FILE (the nodes to log in to)\n";
      return kExitUsage;
    }
    if (Status st = ValidateSshFlags(ssh); !st.ok()) {
      std::cerr << "coordctl kill: " << st.message() << "\n";
      return kExitUsage;
    }
    return KillOverSsh(job_id, hosts_path, grace_s >= 0 ? grace_s : 5, ssh, json);
  }

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms, global.tls);
  coordinator::KillJobRequest req;
  req.set_job_id(job_id);
  if (grace_s >= 0) req.set_grace_ms(static_cast<int>(grace_s * 1000));
  auto reply = client.KillJob(req);
  if (!reply.ok()) return ReportError(reply.status());
  if (!reply->message().empty()) std::cout << reply->message() << "\n";
  if (reply->confirmed_clean()) {
    std::cout << "killed " << reply->job_id() << ": every node confirmed no process is left\n";
    return kExitOk;
  }
  std::cout << "killed " << reply->job_id()
            << ", but these nodes could not confirm they are clean:";
  for (const auto& h : reply->unconfirmed_hosts()) std::cout << " " << h;
  std::cout << "\n(check them, or run `coordctl kill` again once they answer)\n";
  return kExitJobFailed;
}

}  // namespace coord::cli
