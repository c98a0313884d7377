#include "tests/support/local_cluster.h"

#include <unistd.h>

#include "agent/cgroup.h"
#include "agent/state_dir.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

// Daemons write their bound ports to files once they listen; a loaded 2-core machine
// has taken seconds, so this bounds "it never came up", not an expected time.
constexpr int kDaemonStartMs = 30000;

// Reads a port file the daemon writes once it listens; 0 if none appeared in time.
int WaitForPort(const std::string& file) {
  const std::string got = WaitForFile(file, kDaemonStartMs);
  return got.empty() ? 0 : std::stoi(got);
}

}  // namespace

::testing::AssertionResult LocalCluster::StartCoordd(const DaemonOptions& options) {
  const std::string port_file = dir_.File("coordd.port"), http_file = dir_.File("coordd.http");
  unlink(port_file.c_str());
  unlink(http_file.c_str());
  std::vector<std::string> argv = {
      BinPath("coordd"), "--listen",          "127.0.0.1:" + std::to_string(options.port),
      "--state-dir",     dir_.File("coordd"), "--port-file",
      port_file};
  if (options.http) {
    argv.insert(argv.end(), {"--http-listen", "127.0.0.1:0", "--http-port-file", http_file});
  }
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  if (!coordd_.Start(argv, dir_.File("coordd.log"))) {
    return ::testing::AssertionFailure() << "cannot start " << argv[0];
  }
  coordd_port_ = WaitForPort(port_file);
  const int http = options.http ? WaitForPort(http_file) : -1;
  if (coordd_port_ == 0 || http == 0) {
    return ::testing::AssertionFailure() << "coordd did not come up:\n"
                                         << ReadAll(dir_.File("coordd.log"));
  }
  coordinator_ = "127.0.0.1:" + std::to_string(coordd_port_);
  coordd_http_ = options.http ? "127.0.0.1:" + std::to_string(http) : "";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult LocalCluster::StartAgent(int i, const DaemonOptions& options) {
  if (i < 0 || i > static_cast<int>(agents_.size())) {
    return ::testing::AssertionFailure() << "agent " << i << " after " << agents_.size();
  }
  if (i == static_cast<int>(agents_.size())) {
    agents_.emplace_back();
    agents_.back().process = std::make_unique<Process>();
  }
  Agent& agent = agents_[i];
  const std::string n = std::to_string(i);
  const std::string addr = options.address.empty() ? AgentAddr(i) : options.address;
  const std::string port_file = dir_.File("agent" + n + ".port");
  const std::string http_file = dir_.File("agent" + n + ".http");
  unlink(port_file.c_str());
  unlink(http_file.c_str());
  std::vector<std::string> argv = {BinPath("coord-agent"),
                                   "--listen",
                                   addr + ":" + std::to_string(options.port),
                                   "--state-dir",
                                   dir_.File("agent" + n),
                                   "--port-file",
                                   port_file};
  if (options.http) {
    argv.insert(argv.end(), {"--http-listen", addr + ":0", "--http-port-file", http_file});
  }
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  argv.insert(argv.begin(), options.exec_prefix.begin(), options.exec_prefix.end());
  const std::string log = dir_.File("agent" + n + ".log");
  if (!agent.process->Start(argv, log)) {
    return ::testing::AssertionFailure() << "cannot start " << argv[0];
  }
  agent.port = WaitForPort(port_file);
  const int http = options.http ? WaitForPort(http_file) : -1;
  if (agent.port == 0 || http == 0) {
    return ::testing::AssertionFailure() << "agent " << i << " did not come up:\n" << ReadAll(log);
  }
  agent.grpc = addr + ":" + std::to_string(agent.port);
  agent.http = options.http ? addr + ":" + std::to_string(http) : "";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult LocalCluster::StartAgents(int n, const DaemonOptions& options) {
  std::string hosts;
  for (int i = 0; i < n; ++i) {
    ::testing::AssertionResult started = StartAgent(num_agents(), options);
    if (!started) return started;
    hosts += agents_.back().grpc + "\n";
  }
  if (!WriteTextFile(hosts_file(), hosts)) {
    return ::testing::AssertionFailure() << "cannot write " << hosts_file();
  }
  return ::testing::AssertionSuccess();
}

RunResult LocalCluster::Ctl(std::vector<std::string> args, int timeout_ms) const {
  args.insert(args.begin(), {BinPath("coordctl"), "--coordinator", coordinator_});
  return RunCommand(args, {}, timeout_ms);
}

nlohmann::json LocalCluster::Status(const std::string& job) const {
  RunResult r = Ctl({"status", job, "--json"});
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::string LocalCluster::Logs() const {
  std::string out = "---- coordd log ----\n" + ReadAll(dir_.File("coordd.log"));
  for (int i = 0; i < num_agents(); ++i) {
    const std::string n = std::to_string(i);
    out += "---- agent " + n + " log ----\n" + ReadAll(dir_.File("agent" + n + ".log"));
  }
  return out;
}

void LocalCluster::StopAll() {
  for (Agent& a : agents_) a.process->Stop();
  coordd_.Stop();
  for (int i = 0; i < num_agents(); ++i) RemoveAgentCgroup(dir_.File("agent" + std::to_string(i)));
}

void RemoveAgentCgroup(const std::string& state_dir) {
  const std::string mount = agent::ParseCgroup2Mount(ReadAll("/proc/self/mountinfo"));
  if (mount.empty()) return;
  const std::string own = agent::ParseOwnCgroup(ReadAll("/proc/self/cgroup"));
  agent::RemoveCgroupTree(agent::DefaultCgroupParent(mount, own, agent::AgentTag(state_dir)));
}

void ExpectJobProcessesGone(const std::string& job, int wait_ms) {
  if (job.empty()) return;
  const bool gone =
      WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, wait_ms, 100);
  std::vector<pid_t> left = ProcessesWithEnv("COORD_JOB_ID", job);
  EXPECT_TRUE(gone && left.empty()) << left.size() << " process(es) of job " << job << " left";
  KillPids(left);
}

}  // namespace coord::testing
