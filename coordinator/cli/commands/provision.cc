// coordctl provision: applies a YAML playbook (playbooks/) to every host of a
// hosts file over SSH, hosts in parallel, one line per host and task, then a
// summary table (or --json). The replacement for ssh-in-a-loop setup scripts.
//
// Besides --var and --vars-file, every host gets these variables (a --var wins):
//   coord_local_bin  the directory of this coordctl (coord-agent is beside it)
//   coord_tls_dir    the CA directory on this machine (--tls-dir / $COORD_TLS_DIR)
//   agent_port       the agent port from the host's line
#include <iostream>
#include <optional>

#include "common/certs.h"
#include "common/fs.h"
#include "coordinator/cli/cli.h"
#include "coordinator/cli/ssh_hosts.h"
#include "playbooks/runner/playbook_parser.h"

namespace coord::cli {
namespace {

namespace po = boost::program_options;
namespace pb = playbooks;

// A bare name ("agent" or "agent.yaml") also finds the shipped playbooks:
// installed (<prefix>/share/coord/playbooks) or in the source tree of this build.
std::string FindPlaybook(const std::string& arg) {
  if ((PathExists(arg) && !IsDirectory(arg)) || arg.find('/') != std::string::npos) return arg;
  std::string file =
      arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".yaml") == 0 ? arg : arg + ".yaml";
  std::string exe_dir = Dirname(SelfExePath());
  for (const std::string& dir :
       {JoinPath(exe_dir, "../share/coord/playbooks"), std::string(COORD_SOURCE_PLAYBOOKS_DIR)}) {
    if (PathExists(JoinPath(dir, file))) return JoinPath(dir, file);
  }
  return arg;
}

// --issue-certs: a node certificate for every host that has none yet, named
// after the host (what agent.yaml uploads). Needs the CA key here.
Status IssueMissingNodeCerts(const std::vector<HostEntry>& hosts, const std::string& tls_dir) {
  std::optional<PemPair> ca;  // read once, and only if some host needs a certificate
  for (const HostEntry& h : hosts) {
    std::string crt = JoinPath(tls_dir, h.host + ".crt");
    if (PathExists(crt)) continue;
    if (!ca) {
      auto loaded = LoadCaDir(tls_dir);
      if (!loaded.ok()) return loaded.status().WithContext("--issue-certs");
      ca = *loaded;
    }
    auto pair = IssueCertificate(*ca, {h.host, CertRole::kNode, {h.host}});
    if (!pair.ok()) return pair.status().WithContext("--issue-certs: " + h.host);
    RETURN_IF_ERROR(WritePemPair(*pair, tls_dir, h.host));
    std::cerr << "issued " << crt << " (role node, names " << h.host << ")\n";
  }
  return Status::Ok();
}

}  // namespace

int RunProvision(const GlobalOptions& /*global: --tls-dir reaches UserTlsDir*/,
                 const std::vector<std::string>& args) {
  std::string hosts_path, playbook_arg, vars_file;
  std::vector<std::string> var_args;
  bool check = false, json = false, issue_certs = false;
  SshFlags ssh;
  po::options_description opts("provision options");
  opts.add_options()("playbook", po::value(&playbook_arg),
                     "the playbook: a file, or a shipped one by name "
                     "(hcc-node, agent, uninstall)")(
      "hosts", po::value(&hosts_path), "hosts file (the inventory; ssh_port=, ssh_user= per line)")(
      "var,e", po::value(&var_args)->composing(), "NAME=VALUE, highest precedence (repeatable)")(
      "vars-file", po::value(&vars_file), "a YAML map of variables")(
      "check", po::bool_switch(&check), "show what would change; change nothing")(
      "json", po::bool_switch(&json), "print one JSON document instead of lines and a table")(
      "issue-certs", po::bool_switch(&issue_certs),
      "issue a node certificate for each host that has none (needs the CA key here)");
  AddSshOptions(&opts, &ssh);
  po::positional_options_description pos;
  pos.add("playbook", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("provision"), opts, pos, &vm, &code)) return code;
  if (playbook_arg.empty() || hosts_path.empty()) {
    std::cerr << "coordctl provision: expected a PLAYBOOK and --hosts FILE\n";
    return kExitUsage;
  }
  if (Status st = ValidateSshFlags(ssh); !st.ok()) {
    std::cerr << "coordctl provision: " << st.message() << "\n";
    return kExitUsage;
  }
  auto hosts = LoadHostfile(hosts_path);
  if (!hosts.ok()) return ReportError(hosts.status());
  auto playbook = pb::LoadPlaybook(FindPlaybook(playbook_arg));
  if (!playbook.ok()) return ReportError(playbook.status());

  pb::RunOptions run;
  run.forks = ssh.forks;
  run.max_fail_percent = ssh.max_fail_percent;
  run.check = check;
  for (const std::string& a : var_args) {
    if (Status st = pb::ParseVarAssignment(a, &run.vars); !st.ok()) {
      std::cerr << "coordctl provision: --var " << a << ": " << st.message() << "\n";
      return kExitUsage;
    }
  }
  if (!vars_file.empty()) {
    auto vars = pb::LoadVarsFile(vars_file);
    if (!vars.ok()) return ReportError(vars.status());
    run.vars_file = *vars;
  }
  std::string tls_dir = UserTlsDir();
  if (issue_certs) {
    if (Status st = IssueMissingNodeCerts(*hosts, tls_dir); !st.ok()) return ReportError(st);
  }
  std::vector<pb::InventoryHost> inventory = InventoryFromHosts(*hosts, ssh);
  const std::string local_bin = Dirname(SelfExePath());
  for (pb::InventoryHost& h : inventory) {
    h.vars["coord_local_bin"] = local_bin;
    h.vars["coord_tls_dir"] = tls_dir;
  }

  std::unique_ptr<pb::Reporter> reporter = MakeReporter(json);
  auto result = pb::RunPlaybook(*playbook, inventory, run, MakeConnector(ssh), reporter.get());
  if (!result.ok()) return ReportError(result.status());
  return pb::RunSucceeded(*result) ? kExitOk : kExitJobFailed;
}

}  // namespace coord::cli
