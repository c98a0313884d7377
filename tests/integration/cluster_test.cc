// End-to-end control plane: a real coordd and 4 real coord-agents, each on its
// own loopback address (127.0.0.2 ... 127.0.0.5, port 0), driven through the
// real coordctl binary. Jobs run tests/programs/rank_probe. After every test no
// process of any job it started may be left (checked by scanning /proc).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr int kNodes = 4;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(StartCoordinator());
    for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(StartAgent(i, 0)) << "agent " << i;
    std::string hosts = "# 4 simulated nodes\n";
    for (int i = 0; i < kNodes; ++i)
      hosts += AgentAddr(i) + ":" + std::to_string(agent_ports_[i]) + "\n";
    WriteFile(dir_.File("hosts.txt"), hosts);
  }

  void TearDown() override {
    for (const auto& job : jobs_) {
      auto left = ProcessesWithEnv("COORD_JOB_ID", job);
      EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job << " left running";
      KillPids(left);
    }
    for (auto& a : agents_) a.Stop();
    coordd_.Stop();
  }

  static std::string AgentAddr(int i) { return "127.0.0." + std::to_string(i + 2); }

  bool StartCoordinator() {
    std::string port_file = dir_.File("coordd.port");
    coordd_.Start({BinPath("coordd"), "--listen", "127.0.0.1:0", "--state-dir", dir_.File("coordd"),
                   "--port-file", port_file, "--connect-timeout-ms", "1500"},
                  dir_.File("coordd.log"));
    std::string port = WaitForFile(port_file, 10000);
    coordinator_ = "127.0.0.1:" + port;
    while (!coordinator_.empty() && (coordinator_.back() == '\n')) coordinator_.pop_back();
    return !port.empty();
  }

  // port 0: pick one; else reuse (an agent restarted on its old address).
  bool StartAgent(int i, int port) {
    std::string port_file = dir_.File("agent" + std::to_string(i) + ".port");
    unlink(port_file.c_str());
    agents_[i].Start(
        {BinPath("coord-agent"), "--listen", AgentAddr(i) + ":" + std::to_string(port),
         "--state-dir", dir_.File("agent" + std::to_string(i)), "--port-file", port_file},
        dir_.File("agent" + std::to_string(i) + ".log"));
    std::string got = WaitForFile(port_file, 10000);
    if (got.empty()) return false;
    agent_ports_[i] = std::stoi(got);
    return true;
  }

  static void WriteFile(const std::string& path, const std::string& text) {
    ASSERT_TRUE(WriteTextFile(path, text)) << path;
  }

  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) {
    args.insert(args.begin(), {BinPath("coordctl"), "--coordinator", coordinator_});
    return RunCommand(args, {}, timeout_ms);
  }

  // Writes the job spec and starts it; returns the job id ("" on failure).
  RunResult Start(const json& spec, std::vector<std::string> extra = {}) {
    static int n = 0;
    std::string path = dir_.File("job" + std::to_string(n++) + ".json");
    WriteFile(path, spec.dump(2));
    std::vector<std::string> args = {"start", "--hosts", dir_.File("hosts.txt"), "--config", path};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = Ctl(args);
    std::string id = r.out.substr(0, r.out.find('\n'));
    if (!id.empty()) jobs_.insert(id);
    return r;
  }

  static std::string JobId(const RunResult& r) { return r.out.substr(0, r.out.find('\n')); }

  json Status(const std::string& job) {
    RunResult r = Ctl({"status", job, "--json"});
    if (r.out.empty()) return json::object();
    return json::parse(r.out, nullptr, false);
  }

  bool WaitState(const std::string& job, const std::string& state, int timeout_ms) {
    return WaitUntil([&] { return Status(job).value("state", "") == state; }, timeout_ms);
  }

  json Probe(std::vector<std::string> args, int nproc = 2) {
    std::vector<std::string> cmd = {BinPath("rank_probe")};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return json{{"name", "probe"},
                {"launch", {{"nproc_per_node", nproc}, {"command", cmd}, {"kill_grace_s", 1}}}};
  }

  // As the message of an unconfirmed kill says: run it again once the nodes answer
  // (coordd's channel to a restarted agent reconnects within its 2 s backoff).
  void ExpectKillConfirmedOnceTheAgentsAnswer(const std::string& job) {
    RunResult k;
    EXPECT_TRUE(WaitUntil(
        [&] {
          k = Ctl({"kill", job});
          return k.exit_code == 0;
        },
        10000))
        << k.out << k.err;
  }

  TempDir dir_;
  Process coordd_;
  Process agents_[kNodes];
  int agent_ports_[kNodes] = {0};
  std::string coordinator_;
  std::set<std::string> jobs_;
};

std::map<std::string, std::string> ParseEnvFile(const std::string& text) {
  std::map<std::string, std::string> env;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    pos = nl + 1;
  }
  return env;
}

// ---------------------------------------------------------------------------
// Launch and environment

TEST_F(ClusterTest, EveryRankGetsExactlyTheTorchrunEnvironment) {
  std::string out_dir = dir_.File("env");
  mkdir(out_dir.c_str(), 0755);
  json spec = Probe({"--env-out", out_dir});
  spec["launch"]["env"] = {{"MY_SETTING", "42"}, {"NCCL_DEBUG", "INFO"}};
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  json st = Status(job);
  int master_port = st["master_port"].get<int>();
  EXPECT_GT(master_port, 0);
  for (int rank = 0; rank < kNodes * 2; ++rank) {
    auto env = ParseEnvFile(ReadAll(out_dir + "/env-" + std::to_string(rank) + ".txt"));
    ASSERT_FALSE(env.empty()) << "rank " << rank << " wrote no environment";
    int node = rank / 2;
    EXPECT_EQ(env["RANK"], std::to_string(rank));
    EXPECT_EQ(env["LOCAL_RANK"], std::to_string(rank % 2));
    EXPECT_EQ(env["WORLD_SIZE"], "8");
    EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "2");
    EXPECT_EQ(env["NODE_RANK"], std::to_string(node));
    EXPECT_EQ(env["GROUP_RANK"], std::to_string(node));
    EXPECT_EQ(env["MASTER_ADDR"], "127.0.0.2");
    EXPECT_EQ(env["MASTER_PORT"], std::to_string(master_port));
    EXPECT_EQ(env["COORD_JOB_ID"], job);
    EXPECT_EQ(env["COORD_RESTART_COUNT"], "0");
    EXPECT_EQ(env["MY_SETTING"], "42");
    EXPECT_EQ(env["NCCL_DEBUG"], "INFO");
  }
  for (const auto& rank : st["ranks"]) {
    EXPECT_EQ(rank["state"], "RANK_EXITED");
    EXPECT_EQ(rank["exit_code"], 0);
  }
}

TEST_F(ClusterTest, LogsComeBackFromEveryNodePrefixedByNodeAndRank) {
  RunResult r = Start(Probe({"--print", "3"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000));
  RunResult logs = Ctl({"logs", job});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  for (int rank = 0; rank < 8; ++rank) {
    std::string prefix = "[" + AgentAddr(rank / 2) + ":" + std::to_string(rank) + "] ";
    for (int i = 0; i < 3; ++i) {
      std::string line = prefix + "line " + std::to_string(i) + " of rank " + std::to_string(rank);
      EXPECT_NE(logs.out.find(line), std::string::npos) << "missing: " << line << "\n" << logs.out;
    }
  }
  RunResult one = Ctl({"logs", job, "--rank", "5"});
  EXPECT_NE(one.out.find("[127.0.0.4:5] line 0 of rank 5"), std::string::npos) << one.out;
  EXPECT_EQ(one.out.find(":4] "), std::string::npos) << "rank 4's lines leaked into --rank 5";
}

TEST_F(ClusterTest, FollowStreamsUntilTheJobEnds) {
  RunResult r = Start(Probe({"--print", "2", "--sleep-ms", "800"}), {"--follow"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[127.0.0.5:7] line 1 of rank 7"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("SUCCEEDED"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// Failures and kill

TEST_F(ClusterTest, ARankExitingOneFailsTheJobAndKillsTheOthers) {
  RunResult r =
      Start(Probe({"--exit-rank", "5", "--exit", "3", "--sleep-ms", "600000"}), {"--follow"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string job = JobId(r);
  json st = Status(job);
  EXPECT_EQ(st["state"], "FAILED");
  EXPECT_EQ(st["failure"]["rank"], 5);
  EXPECT_EQ(st["failure"]["host"], "127.0.0.4");
  EXPECT_EQ(st["failure"]["exit_code"], 3);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
  RunResult text = Ctl({"status", job});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("rank 5"), std::string::npos) << text.out;
}

TEST_F(ClusterTest, KillLeavesNoProcessEvenChildrenDaemonsAndTermIgnorers) {
  RunResult r =
      Start(Probe({"--spawn-child", "--spawn-daemon", "--ignore-term", "--sleep-ms", "600000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  // Every rank has a child and a daemonised grandchild: 3 processes per rank.
  ASSERT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).size() >= 24; }, 10000))
      << ProcessesWithEnv("COORD_JOB_ID", job).size();
  RunResult k = Ctl({"kill", job});
  EXPECT_EQ(k.exit_code, 0) << k.out << k.err;
  EXPECT_NE(k.out.find("no process is left"), std::string::npos) << k.out;
  EXPECT_LT(k.seconds, 1 /*grace*/ + 2.0 * TimeScale());
  EXPECT_TRUE(ProcessesWithEnv("COORD_JOB_ID", job).empty());
  EXPECT_EQ(Status(job)["state"], "KILLED");
}

TEST_F(ClusterTest, KillWithoutJobIdStopsTheRunningJob) {
  RunResult r = Start(Probe({"--sleep-ms", "600000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  RunResult k = Ctl({"kill"});
  EXPECT_EQ(k.exit_code, 0) << k.err;
  EXPECT_NE(k.out.find(job), std::string::npos);
  EXPECT_TRUE(ProcessesWithEnv("COORD_JOB_ID", job).empty());
}

// ---------------------------------------------------------------------------
// The agent can restart without costing the run

TEST_F(ClusterTest, AgentKilledAndRestartedFindsItsRanksAndReportsTheirExit) {
  RunResult r = Start(Probe({"--sleep-ms", "3000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "RUNNING", 5000));
  auto before = ProcessesWithEnv("COORD_JOB_ID", job);
  agents_[1].Crash();  // node 1 holds ranks 2 and 3
  EXPECT_EQ(ProcessesWithEnv("COORD_JOB_ID", job).size(), before.size())
      << "ranks died with their agent";
  ASSERT_TRUE(StartAgent(1, agent_ports_[1]));
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  const json status = Status(job);  // the loop below reads into it: it must outlive the loop
  for (const auto& rank : status["ranks"]) {
    EXPECT_EQ(rank["state"], "RANK_EXITED") << rank.dump();
    EXPECT_EQ(rank["exit_code"], 0) << rank.dump();
  }
}

// ---------------------------------------------------------------------------
// Spares and elastic restarts: a node whose agent is gone for good

TEST_F(ClusterTest, ASpareTakesOverALostNodeAndAKillStillReachesTheLostOne) {
  json spec = Probe({"--sleep-ms", "0", "--only-generation", "0"});
  spec["launch"]["nnodes"] = 3;  // the 4th host is a spare
  spec["launch"]["max_restarts"] = 1;
  spec["launch"]["restart_backoff_s"] = 0;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "RUNNING", 5000));
  EXPECT_EQ(Status(job)["spares"][0]["state"], "NODE_SPARE");
  agents_[1].Crash();  // node 1's ranks live on under their supervisor; the agent is gone
  // Generation 1 runs on nodes 0, 3 (the spare, at node rank 1) and 2, and its ranks
  // exit 0 at once.
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  json s = Status(job);
  EXPECT_EQ(s["generation"], 1);
  EXPECT_EQ(s["nodes"][1]["host"], AgentAddr(3));
  EXPECT_EQ(s["spares"][0]["host"], AgentAddr(1));
  EXPECT_EQ(s["spares"][0]["state"], "NODE_EXCLUDED");
  EXPECT_EQ(s["failure"]["kind"], "FAILURE_NODE_LOST");
  EXPECT_NE(s["failure"]["action"].get<std::string>().find("replaced " + AgentAddr(1)),
            std::string::npos)
      << s["failure"].dump();
  // The lost node comes back with generation 0's ranks still running: the kill of the
  // finished job reaches it and they are gone.
  EXPECT_FALSE(ProcessesWithEnv("COORD_JOB_ID", job).empty());
  ASSERT_TRUE(StartAgent(1, agent_ports_[1]));
  ExpectKillConfirmedOnceTheAgentsAnswer(job);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
}

TEST_F(ClusterTest, AnElasticJobGoesOnWithFewerNodesWhenThereIsNoSpare) {
  json spec = Probe({"--sleep-ms", "0", "--only-generation", "0"});
  spec["launch"]["nnodes"] = "2:4";
  spec["launch"]["max_restarts"] = 1;
  spec["launch"]["restart_backoff_s"] = 0;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "RUNNING", 5000));
  EXPECT_EQ(Status(job)["world_size"], 8);
  agents_[3].Crash();
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  json s = Status(job);
  EXPECT_EQ(s["world_size"], 6);
  EXPECT_EQ(s["nodes"].size(), 3u);
  EXPECT_NE(s["failure"]["action"].get<std::string>().find("continuing on 3 nodes"),
            std::string::npos)
      << s["failure"].dump();
  ASSERT_TRUE(StartAgent(3, agent_ports_[3]));
  ExpectKillConfirmedOnceTheAgentsAnswer(job);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
}

TEST_F(ClusterTest, KillDuringARestartThatWaitsForANodeStartsNothingAndNamesTheNode) {
  json spec = Probe({"--sleep-ms", "0"});
  spec["launch"]["max_restarts"] = 3;
  spec["launch"]["restart_backoff_s"] = 0;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "RUNNING", 5000));
  agents_[2].Crash();
  // No spare: the restart waits for node 2.
  ASSERT_TRUE(WaitUntil(
      [&] { return Status(job).value("message", "").find("waiting for " + AgentAddr(2)) == 0; },
      15000))
      << Status(job).dump(2);
  RunResult k = Ctl({"kill", job});
  EXPECT_NE(k.exit_code, 0) << k.out;  // not confirmed clean everywhere
  EXPECT_NE((k.out + k.err).find(AgentAddr(2)), std::string::npos) << k.out << k.err;
  json s = Status(job);
  EXPECT_EQ(s["state"], "KILLED");
  EXPECT_EQ(s["generation"], 0);  // nothing was launched after the kill
  // Node 2's agent comes back: the kill is repeated and its ranks go.
  ASSERT_TRUE(StartAgent(2, agent_ports_[2]));
  ExpectKillConfirmedOnceTheAgentsAnswer(job);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
}

// ---------------------------------------------------------------------------
// Bad input: each names what is wrong and where

TEST_F(ClusterTest, MalformedHostsFileNamesTheLine) {
  WriteFile(dir_.File("bad-hosts.txt"), "127.0.0.2\n127.0.0.3:notaport\n");
  WriteFile(dir_.File("j.json"), Probe({}).dump());
  RunResult r =
      Ctl({"start", "--hosts", dir_.File("bad-hosts.txt"), "--config", dir_.File("j.json")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad-hosts.txt:2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("notaport"), std::string::npos) << r.err;
}

TEST_F(ClusterTest, EmptyAndDuplicateHostsAreRefused) {
  WriteFile(dir_.File("j.json"), Probe({}).dump());
  WriteFile(dir_.File("empty.txt"), "# nothing\n\n");
  RunResult e = Ctl({"start", "--hosts", dir_.File("empty.txt"), "--config", dir_.File("j.json")});
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("empty.txt"), std::string::npos) << e.err;
  WriteFile(dir_.File("dup.txt"), "127.0.0.2:7071\n127.0.0.3:7071\n127.0.0.2:7071\n");
  RunResult d = Ctl({"start", "--hosts", dir_.File("dup.txt"), "--config", dir_.File("j.json")});
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("dup.txt:3"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("line 1"), std::string::npos) << d.err;
}

TEST_F(ClusterTest, InvalidJsonGivesLineAndColumn) {
  WriteFile(dir_.File("broken.json"),
            "{\n  \"launch\": {\n    \"nproc_per_node\": 2\n    \"command\": [\"x\"]\n  }\n}\n");
  RunResult r =
      Ctl({"start", "--hosts", dir_.File("hosts.txt"), "--config", dir_.File("broken.json")});
  EXPECT_EQ(r.exit_code, 2);
  // The comma is missing at the end of line 3 (the parser notices on line 4).
  EXPECT_NE(r.err.find("broken.json:3:24:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("add a comma"), std::string::npos) << r.err;
}

TEST_F(ClusterTest, MistypedLaunchKeyIsWarnedWithDidYouMeanAndMissingCommandIsAnError) {
  json spec = Probe({});
  spec["launch"]["kill_grace_sec"] = 3;
  RunResult w = Start(spec);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.err.find("launch.kill_grace_sec"), std::string::npos) << w.err;
  EXPECT_NE(w.err.find("did you mean kill_grace_s"), std::string::npos) << w.err;
  WaitState(JobId(w), "SUCCEEDED", 10000);

  json no_cmd = {{"launch", {{"nproc_per_node", 2}}}};
  RunResult e = Start(no_cmd);
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("launch.command"), std::string::npos) << e.err;
  json bad_type = {{"launch", {{"nproc_per_node", "2"}, {"command", {"true"}}}}};
  RunResult t = Start(bad_type);
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_NE(t.err.find("launch.nproc_per_node"), std::string::npos) << t.err;
}

TEST_F(ClusterTest, UnreachableAgentRefusesTheStartQuicklyAndLeavesNothing) {
  // Port 1 on 127.0.0.9: nothing listens there.
  std::string hosts = ReadAll(dir_.File("hosts.txt")) + "127.0.0.9:1\n";
  WriteFile(dir_.File("hosts5.txt"), hosts);
  WriteFile(dir_.File("j.json"), Probe({"--sleep-ms", "600000"}).dump());
  RunResult r = Ctl({"start", "--hosts", dir_.File("hosts5.txt"), "--config", dir_.File("j.json")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("127.0.0.9:1: unreachable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not started"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << "no job may be made: " << r.out;
  EXPECT_LT(r.seconds, 10.0);
  EXPECT_TRUE(Ctl({"jobs", "--json"}).out.find("probe") == std::string::npos);

  // --skip-checks: the launch itself fails on that node, as a job you can inspect.
  r = Ctl({"start", "--hosts", dir_.File("hosts5.txt"), "--config", dir_.File("j.json"),
           "--skip-checks"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("127.0.0.9:1"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 10.0);
  std::string job = JobId(r);
  ASSERT_FALSE(job.empty()) << "a failed launch is still a job you can inspect";
  jobs_.insert(job);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
  EXPECT_EQ(Status(job)["state"], "FAILED");
}

TEST_F(ClusterTest, MissingCommandIsCaughtByTheChecksOrByTheLaunch) {
  json spec = {{"launch", {{"nproc_per_node", 2}, {"command", {"/nonexistent/trainer", "--x"}}}}};
  RunResult checked = Start(spec);
  EXPECT_EQ(checked.exit_code, 1) << checked.err;
  EXPECT_NE(checked.err.find("job_program on 127.0.0.2:"), std::string::npos) << checked.err;
  EXPECT_NE(checked.err.find("/nonexistent/trainer not found"), std::string::npos) << checked.err;
  EXPECT_TRUE(JobId(checked).empty());

  RunResult r = Start(spec, {"--skip-checks"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/trainer"), std::string::npos) << r.err;
  std::string job = JobId(r);
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(Status(job)["state"], "FAILED");
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
}

// launch.max_restarts: rank 5 dies in generation 0; the coordinator kills the rest of
// that generation on every node, launches generation 1, which succeeds.
TEST_F(ClusterTest, AFailedRankRestartsTheJobAsTheNextGeneration) {
  json spec = Probe({"--exit", "3", "--exit-rank", "5", "--only-generation", "0"});
  spec["launch"]["max_restarts"] = 2;
  spec["launch"]["restart_backoff_s"] = 0.2;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  json s = Status(job);
  EXPECT_EQ(s["generation"], 1);
  EXPECT_EQ(s["restarts"], 1);
  EXPECT_EQ(s["failure"]["rank"], 5);
  EXPECT_EQ(s["failure"]["exit_code"], 3) << s["failure"].dump();
  for (const json& rank : s["ranks"]) EXPECT_EQ(rank.value("exit_code", 0), 0) << rank.dump();
  RunResult text = Ctl({"status", job});
  EXPECT_NE(text.out.find("generation: 1 (restarts used 1 of 2)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("last failure: rank 5"), std::string::npos) << text.out;
}

// launch.hang_timeout_s: every rank alive, none writing progress records any more
// (COORD_PROGRESS_FD): the coordinator calls it a hang, kills the generation and
// restarts; generation 1 succeeds.
TEST_F(ClusterTest, RanksThatStopReportingProgressAreAHangAndTheJobRestarts) {
  json spec = Probe({"--progress-ms", "50", "--progress-count", "5", "--only-generation", "0"});
  spec["launch"]["max_restarts"] = 1;
  spec["launch"]["restart_backoff_s"] = 0;
  spec["launch"]["hang_timeout_s"] = 1;
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", 20000)) << Status(job).dump(2);
  double s_total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json s = Status(job);
  EXPECT_EQ(s["restarts"], 1);
  std::string why = s["failure"]["message"];
  EXPECT_NE(why.find("hang: no progress record from any rank for "), std::string::npos) << why;
  EXPECT_NE(why.find("(launch.hang_timeout_s 1.0 s)"), std::string::npos) << why;
  // 5 records in 0.25 s, then a 1 s timeout, a heartbeat (1 s) at most late, restart.
  EXPECT_LT(s_total, 8.0);
  std::printf("hang detected and job restarted and done in %.2f s\n", s_total);
}

// launch.startup_timeout_s: ranks that take 2.5 s to write their first record (a slow
// rendezvous or checkpoint load) are not a hang under hang_timeout_s 1; once they write
// and then stop, the hang deadline fires as before.
TEST_F(ClusterTest, AStartUpSlowerThanTheHangTimeoutIsNotAHang) {
  json spec = Probe({"--startup-ms", "2500", "--progress-ms", "50", "--progress-count", "20"});
  spec["launch"]["hang_timeout_s"] = 1;
  spec["launch"]["startup_timeout_s"] = 30;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "FAILED", 20000)) << Status(job).dump(2);
  json s = Status(job);
  EXPECT_EQ(s["failure"]["kind"], "FAILURE_HANG") << s["failure"].dump(2);
  EXPECT_NE(s["failure"]["message"].get<std::string>().find("hang: no progress record from any "
                                                            "rank for "),
            std::string::npos);
  // It hung only after every record was written: the slow start was waited for.
  EXPECT_EQ(s["iteration"], "20") << s.dump(2);
}

// A rank stuck in start-up (rank 3 never writes a record while the others train) fails
// the startup deadline, named as such in status, the journal and coordctl's text.
TEST_F(ClusterTest, ARankStuckInStartUpFailsTheStartupDeadlineByName) {
  json spec = Probe({"--startup-ms", "0", "--startup-rank", "3", "--progress-ms", "50"});
  spec["launch"]["hang_timeout_s"] = 1;
  spec["launch"]["startup_timeout_s"] = 2;
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  ASSERT_TRUE(WaitState(job, "FAILED", 20000)) << Status(job).dump(2);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  json s = Status(job);
  const json& f = s["failure"];
  EXPECT_EQ(f["kind"], "FAILURE_STARTUP") << f.dump(2);
  EXPECT_EQ(f["rank"], 3);
  const std::string node1 = AgentAddr(1) + ":" + std::to_string(agent_ports_[1]);
  const std::string want = "startup deadline: rank 3 on " + node1 +
                           " (node 1) wrote no progress record within launch.startup_timeout_s "
                           "2.0 s of the launch (every other rank has written one)";
  EXPECT_NE(f["message"].get<std::string>().find(want), std::string::npos) << f.dump(2);
  EXPECT_GT(std::stoll(s["iteration"].get<std::string>()), 0) << "the other ranks trained";
  RunResult text = Ctl({"status", job});
  EXPECT_NE(text.out.find("failure:    " + want), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("stderr of rank 3"), std::string::npos) << text.out;
  EXPECT_NE(ReadAll(dir_.File("coordd") + "/journal.jsonl").find("FAILURE_STARTUP"),
            std::string::npos);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job).empty(); }, 5000));
}

TEST_F(ClusterTest, ProgressKeepsAJobAliveAndShowsItsIterationAndLoss) {
  json spec = Probe({"--progress-ms", "100"});
  spec["launch"]["hang_timeout_s"] = 1;
  RunResult r = Start(spec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = JobId(r);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  json s = Status(job);
  EXPECT_EQ(s["state"], "RUNNING") << s.dump(2);
  EXPECT_GE(std::stoll(s["iteration"].get<std::string>()), 10) << s.dump(2);
  EXPECT_GT(s["loss"].get<double>(), 0.0);
  EXPECT_EQ(Ctl({"kill", job}).exit_code, 0);
}

TEST_F(ClusterTest, KillOfUnknownJobIsAClearError) {
  RunResult r = Ctl({"kill", "no-such-job"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-job"), std::string::npos) << r.err;
}

TEST_F(ClusterTest, SecondStartOnTheSameHostsIsRefusedUnlessAllowed) {
  RunResult first = Start(Probe({"--sleep-ms", "600000"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  RunResult second = Start(Probe({"--sleep-ms", "600000"}));
  EXPECT_EQ(second.exit_code, 2) << second.out;
  EXPECT_NE(second.err.find(JobId(first)), std::string::npos) << second.err;
  RunResult forced = Start(Probe({"--sleep-ms", "600000"}), {"--allow-overlap"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(Status(JobId(first))["master_port"], Status(JobId(forced))["master_port"])
      << "two jobs on the same hosts must not share MASTER_PORT";
  EXPECT_EQ(Ctl({"kill", JobId(first)}).exit_code, 0);
  EXPECT_EQ(Ctl({"kill", JobId(forced)}).exit_code, 0);
}

TEST_F(ClusterTest, CoordctlWithoutCoordinatorSaysSoWithExitCode3) {
  RunResult r = RunCommand({BinPath("coordctl"), "--coordinator", "127.0.0.1:1", "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot reach coordd at 127.0.0.1:1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace coord::testing
