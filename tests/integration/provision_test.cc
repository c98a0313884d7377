// coordctl provision and kill --ssh end to end: two "nodes" (real sshd on
// 127.0.0.2 and 127.0.0.3, each host's files under its own directory), the
// shipped playbooks/agent.yaml installs coord-agent with its certificate, coordd
// runs a job on them over mutual TLS, a second run changes nothing, --check
// changes nothing, failures stay on their host, a kill over SSH works with
// coordd and the agents down, and uninstall.yaml removes it all.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/sshd.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const char* const kNodes[] = {"127.0.0.2", "127.0.0.3"};

class ProvisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      std::string error;
      sshd_[i] = Sshd::Start(kNodes[i], &error);
      ASSERT_TRUE(sshd_[i]) << error;
    }
    // One login key for both nodes, as a cluster has.
    ASSERT_TRUE(WriteTextFile(sshd_[1]->File("authorized_keys"),
                              ReadAll(sshd_[0]->user_key_path() + ".pub")));
    known_hosts_ = dir_.File("known_hosts");
    ASSERT_TRUE(WriteTextFile(
        known_hosts_, sshd_[0]->KnownHostsLine() + "\n" + sshd_[1]->KnownHostsLine() + "\n"));
    hosts_ = dir_.File("hosts.txt");
    ASSERT_TRUE(WriteTextFile(
        hosts_, std::string("# the nodes, as people write them\n") + kNodes[0] +
                    " ssh_port=" + std::to_string(sshd_[0]->port()) + "\n" + kNodes[1] +
                    " ssh_port=" + std::to_string(sshd_[1]->port()) + "\n"));
    RunResult init = Coordctl({"certs", "init"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
  }

  void TearDown() override {
    coordd_.Stop();
    // Agents the playbook started: stop them by the PID they wrote.
    for (const char* node : kNodes) {
      std::string pid = ReadAll(Root(node) + "/state/agent.pid");
      if (!pid.empty() && kill(std::stoi(pid), 0) == 0) {
        ADD_FAILURE() << "agent on " << node << " still running";
        KillPids({std::stoi(pid)});
      }
    }
    for (const auto& job : jobs_) KillPids(ProcessesWithEnv("COORD_JOB_ID", job));
    for (const char* node : kNodes) RemoveAgentCgroup(Root(node) + "/state");
    if (HasFailure()) {
      for (auto& s : sshd_) std::cerr << "--- sshd log\n" << s->Log();
    }
  }

  std::string Root(const std::string& node) { return dir_.File("node-" + node); }

  RunResult Coordctl(std::vector<std::string> args, int timeout_ms = 120000) {
    args.insert(args.begin(), BinPath("coordctl"));
    return RunCommand(args, {{"COORD_TLS_DIR", dir_.File("tls")}}, timeout_ms);
  }

  // coordctl provision with this test's SSH settings and per-host directories.
  RunResult Provision(const std::string& playbook, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "provision",     playbook,
        "--hosts",       hosts_,
        "--identity",    sshd_[0]->user_key_path(),
        "--known-hosts", known_hosts_,
        "--var",         "root=" + dir_.File("node-{{ inventory_hostname }}"),
        "--var",         "bin_dir={{ root }}/bin",
        "--var",         "tls_dir={{ root }}/tls",
        "--var",         "state_dir={{ root }}/state",
        "--var",         "log_file={{ root }}/agent.log",
        "--var",         "agent_listen={{ inventory_hostname }}:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Coordctl(args);
  }

  static json Totals(const RunResult& r) {
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json::object() : j["totals"];
  }

  // Both agents installed and listening; returns "host:port" per node.
  std::vector<std::string> InstallAgents() {
    RunResult r = Provision("agent", {"--issue-certs"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::vector<std::string> targets;
    for (const char* node : kNodes) {
      std::string port = WaitForFile(Root(node) + "/state/port", 10000);
      EXPECT_FALSE(port.empty()) << ReadAll(Root(node) + "/agent.log");
      if (port.empty()) return {};
      targets.push_back(std::string(node) + ":" + std::to_string(std::stoi(port)));
    }
    return targets;
  }

  // coordd with its coordinator certificate; returns its address.
  std::string StartCoordd() {
    RunResult r =
        Coordctl({"certs", "issue", "coordd", "--role", "coordinator", "--san", "127.0.0.1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string tls = dir_.File("tls");
    coordd_.Start({BinPath("coordd"), "--listen", "127.0.0.1:0", "--state-dir", dir_.File("coordd"),
                   "--port-file", dir_.File("coordd.port"), "--tls-ca", tls + "/ca.crt",
                   "--tls-cert", tls + "/coordd.crt"},
                  dir_.File("coordd.log"));
    std::string port = WaitForFile(dir_.File("coordd.port"), 10000);
    EXPECT_FALSE(port.empty()) << ReadAll(dir_.File("coordd.log"));
    return port.empty() ? "" : "127.0.0.1:" + std::to_string(std::stoi(port));
  }

  std::string StartJob(const std::string& coordd, const std::vector<std::string>& agents,
                       const std::vector<std::string>& command, bool follow) {
    std::string hosts = dir_.File("agents.txt");
    EXPECT_TRUE(WriteTextFile(hosts, agents[0] + "\n" + agents[1] + "\n"));
    std::string spec = dir_.File("job.json");
    EXPECT_TRUE(WriteTextFile(
        spec, json{{"name", "provisioned"},
                   {"launch", {{"nproc_per_node", 2}, {"command", command}, {"kill_grace_s", 1}}}}
                  .dump()));
    std::vector<std::string> args = {"--coordinator", coordd,     "start", "--hosts",
                                     hosts,           "--config", spec};
    if (follow) args.push_back("--follow");
    RunResult r = Coordctl(args);
    std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_FALSE(id.empty()) << r.out << r.err;
    jobs_.push_back(id);
    return id;
  }

  TempDir dir_;
  std::unique_ptr<Sshd> sshd_[2];
  std::string known_hosts_, hosts_;
  Process coordd_;
  std::vector<std::string> jobs_;
};

TEST_F(ProvisionTest, AgentPlaybookInstallsAgentsThatAnswerOverMutualTls) {
  std::vector<std::string> agents = InstallAgents();
  ASSERT_EQ(agents.size(), 2u);
  for (const char* node : kNodes) {
    // The node got its own certificate, private.
    EXPECT_THAT(ReadAll(Root(node) + "/agent.log"), HasSubstr("mutual TLS with certificate"));
    EXPECT_THAT(RunCommand({"stat", "-c", "%a", Root(node) + "/tls/node.key"}).out,
                HasSubstr("600"));
  }
  std::string coordd = StartCoordd();
  ASSERT_FALSE(coordd.empty());
  std::string job = StartJob(coordd, agents, {BinPath("rank_probe"), "--print", "1"}, true);
  RunResult status = Coordctl({"--coordinator", coordd, "status", job, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json st = json::parse(status.out);
  EXPECT_EQ(st.value("state", ""), "SUCCEEDED") << status.out;
  EXPECT_EQ(st["nodes"].size(), 2u);

  // Again: nothing changes, and the agents were not restarted.
  std::string pid_before = ReadAll(Root(kNodes[0]) + "/state/agent.pid");
  RunResult again = Provision("agent", {"--json"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(Totals(again).value("changed", -1), 0) << again.out;
  EXPECT_GT(Totals(again).value("ok", 0), 0) << again.out;
  EXPECT_EQ(ReadAll(Root(kNodes[0]) + "/state/agent.pid"), pid_before);

  // --check of the uninstall: says what would change, changes nothing.
  RunResult check = Provision("uninstall", {"--check", "--json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_GT(Totals(check).value("would_change", 0), 0) << check.out;
  for (const char* node : kNodes) {
    std::string pid = ReadAll(Root(node) + "/state/agent.pid");
    ASSERT_FALSE(pid.empty());
    EXPECT_EQ(kill(std::stoi(pid), 0), 0) << "--check stopped the agent on " << node;
    EXPECT_TRUE(WaitForFile(Root(node) + "/bin/coord-agent", 10).size() > 0);
  }

  // The real uninstall: agents stopped, files gone.
  RunResult un = Provision("uninstall");
  EXPECT_EQ(un.exit_code, 0) << un.out << un.err;
  for (const char* node : kNodes) {
    int pid = std::stoi(ReadAll(Root(node) + "/state/agent.pid"));
    EXPECT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }, 10000)) << node;
    EXPECT_TRUE(ReadAll(Root(node) + "/bin/coord-agent").empty());
    EXPECT_TRUE(ReadAll(Root(node) + "/tls/node.key").empty());
  }
}

TEST_F(ProvisionTest, HccNodePlaybookChecksWithoutChanging) {
  // The guide's steps against these hosts in check mode: probes run, nothing changes.
  RunResult r =
      Provision("hcc-node", {"--check", "--json", "--var", "cfs_export=10.0.0.7:/", "--var",
                             "cfs_mount={{ root }}/cfs", "--var", "require_gpu_driver=false"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json totals = Totals(r);
  EXPECT_EQ(totals.value("failed", -1), 0) << r.out;
  EXPECT_GT(totals.value("would_change", 0), 0) << r.out;  // the mount point, the mount, fstab
  for (const char* node : kNodes) {
    EXPECT_NE(RunCommand({"test", "-e", Root(node) + "/cfs"}).exit_code, 0) << node;
  }
}

TEST_F(ProvisionTest, AFailingTaskStopsThatHostOnly) {
  std::string playbook = dir_.File("fails.yaml");
  ASSERT_TRUE(WriteTextFile(playbook, R"(
- hosts: all
  tasks:
    - name: make the host's directory
      shell: mkdir -p {{ root }}
    - name: fail on the second node
      shell: echo "no luck on {{ inventory_hostname }}" >&2; test {{ inventory_hostname }} != 127.0.0.3
    - name: the step after
      shell: touch {{ root }}/after
)"));
  RunResult r = Provision(playbook);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no luck on 127.0.0.3"));
  EXPECT_TRUE(RunCommand({"test", "-e", Root(kNodes[0]) + "/after"}).exit_code == 0);
  EXPECT_TRUE(RunCommand({"test", "-e", Root(kNodes[1]) + "/after"}).exit_code != 0);
}

TEST_F(ProvisionTest, UnknownHostKeysAndWrongUserKeysAreRefused) {
  std::string playbook = dir_.File("touch.yaml");
  ASSERT_TRUE(
      WriteTextFile(playbook, "- hosts: all\n  tasks:\n    - shell: mkdir -p {{ root }}\n"));
  // Only the first node's key is known.
  ASSERT_TRUE(WriteTextFile(known_hosts_, sshd_[0]->KnownHostsLine() + "\n"));
  RunResult r = Provision(playbook);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("unreachable"));
  EXPECT_THAT(r.out, HasSubstr("SHA256:"));  // the fingerprint to check before trusting it
  EXPECT_TRUE(RunCommand({"test", "-d", Root(kNodes[0])}).exit_code == 0);
  EXPECT_TRUE(RunCommand({"test", "-d", Root(kNodes[1])}).exit_code != 0);

  // A key the nodes do not accept.
  ASSERT_TRUE(WriteTextFile(known_hosts_,
                            sshd_[0]->KnownHostsLine() + "\n" + sshd_[1]->KnownHostsLine() + "\n"));
  std::vector<std::string> args = {"provision",     playbook,
                                   "--hosts",       hosts_,
                                   "--identity",    sshd_[0]->other_key_path(),
                                   "--known-hosts", known_hosts_,
                                   "--var",         "root=/nonexistent"};
  r = Coordctl(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr(sshd_[0]->other_key_path()));
}

TEST_F(ProvisionTest, KillOverSshWorksWithCoorddAndAgentsDown) {
  std::vector<std::string> agents = InstallAgents();
  ASSERT_EQ(agents.size(), 2u);
  std::string coordd = StartCoordd();
  std::string job =
      StartJob(coordd, agents, {BinPath("rank_probe"), "--sleep-ms", "600000"}, false);
  // 2 ranks on each node (and their supervisors, which carry the id too).
  ASSERT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).size() >= 4; }, 20000));
  size_t running = ProcessesWithEnv("COORD_JOB_ID", job).size();
  // The control plane is gone: coordd crashed, the agents stopped (ranks live on).
  coordd_.Crash();
  RunResult stop = Provision("uninstall");
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  ASSERT_EQ(ProcessesWithEnv("COORD_JOB_ID", job).size(), running);

  RunResult kill_run =
      Coordctl({"kill", job, "--ssh", "--hosts", hosts_, "--identity", sshd_[0]->user_key_path(),
                "--known-hosts", known_hosts_, "--grace", "1"});
  EXPECT_EQ(kill_run.exit_code, 0) << kill_run.out << kill_run.err;
  EXPECT_THAT(kill_run.out, HasSubstr("changed"));
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
  // Nothing left: a second kill finds nothing to do.
  RunResult again = Coordctl({"kill", job, "--ssh", "--hosts", hosts_, "--identity",
                              sshd_[0]->user_key_path(), "--known-hosts", known_hosts_, "--json"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Totals(again).value("changed", -1), 0) << again.out;
}

}  // namespace
}  // namespace coord::testing

namespace coord::testing {
namespace {

// coordctl provision with bad input stops before any host is touched, naming
// what is wrong.
TEST(ProvisionCliTest, BadInputGetsAClearError) {
  TempDir dir;
  ASSERT_TRUE(WriteTextFile(dir.File("hosts.txt"), "127.0.0.2 ssh_port=22\n"));
  ASSERT_TRUE(WriteTextFile(dir.File("bad.yaml"),
                            "- hosts: all\n  tasks:\n    - shell: true\n      retries: 3\n"));
  auto provision = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("coordctl"), "provision"});
    return RunCommand(args, {}, 30000);
  };
  RunResult r = provision({dir.File("bad.yaml"), "--hosts", dir.File("hosts.txt")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir.File("bad.yaml") + ":4:"));
  EXPECT_THAT(r.err, HasSubstr("retries"));
  r = provision({dir.File("missing.yaml"), "--hosts", dir.File("hosts.txt")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("missing.yaml"));
  r = provision({"agent", "--hosts", dir.File("hosts.txt"), "--var", "no_equals_sign"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--var no_equals_sign"));
  r = provision({"agent", "--hosts", dir.File("hosts.txt"), "--forks", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--forks"));
  r = provision({"agent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--hosts"));
  r = provision({"agent", "--hosts", dir.File("hosts.txt"), "--issue-certs"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--issue-certs: no CA in"));
  r = RunCommand({BinPath("coordctl"), "kill", "--ssh"}, {}, 30000);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("expected --hosts FILE"));
  r = RunCommand({BinPath("coordctl"), "kill", "job;rm", "--ssh", "--hosts", dir.File("hosts.txt")},
                 {}, 30000);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("expected letters, digits"));
}

}  // namespace
}  // namespace coord::testing
