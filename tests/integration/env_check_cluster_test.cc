// `coordctl check` against real coord-agent processes, each a simulated node on its
// own loopback address and in its own mount namespace (tests/programs/mount_ns_exec):
// the "CFS" path is a bind mount of one shared directory on the good nodes, while a
// bad node gets a different directory there, or a FUSE mount nobody serves (a hung
// NFS server), or a fake nvidia-smi that reports another driver version.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr int kNodes = 4;

class EnvCheckClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: simulated nodes get their own mount namespace";
    for (const char* d : {"export", "local", "cfs"}) mkdir(dir_.File(d).c_str(), 0755);
    // The filesystem type the bind mounts will show (that of the temp dir).
    RunResult t = RunCommand({"findmnt", "-n", "-o", "FSTYPE", "--target", dir_.path()});
    fstype_ = t.out.substr(0, t.out.find('\n'));
    ASSERT_FALSE(fstype_.empty()) << t.err;
  }

  void TearDown() override {
    for (auto& a : agents_) a.Stop();
  }

  static std::string AgentAddr(int i) { return "127.0.0." + std::to_string(i + 2); }

  // How node i sees the shared path: "export" (the shared one), "local" (another
  // directory) or "hung" (a FUSE mount that never answers).
  bool StartAgent(int i, const std::string& view, const std::string& driver_version = "") {
    std::string n = std::to_string(i);
    std::string port_file = dir_.File("agent" + n + ".port");
    std::vector<std::string> argv = {BinPath("mount_ns_exec")};
    if (view == "hung") {
      argv.insert(argv.end(), {"--hung-fuse", dir_.File("cfs")});
    } else {
      argv.insert(argv.end(), {"--bind", dir_.File(view), dir_.File("cfs")});
    }
    argv.insert(argv.end(), {"--", BinPath("coord-agent"), "--listen", AgentAddr(i) + ":0",
                             "--state-dir", dir_.File("agent" + n), "--port-file", port_file});
    std::map<std::string, std::string> env;
    if (!driver_version.empty()) {
      // nvidia-smi answers every query with 8 GPUs of this driver.
      std::string bin = dir_.File("fakebin" + n);
      mkdir(bin.c_str(), 0755);
      std::string script = "#!/bin/sh\nfor i in 0 1 2 3 4 5 6 7; do echo '" + driver_version +
                           ", NVIDIA H100 80GB HBM3, Enabled'; done\n";
      WriteFile(bin + "/nvidia-smi", script);
      chmod((bin + "/nvidia-smi").c_str(), 0755);
      env["PATH"] = bin + ":" + getenv("PATH");
    }
    agents_[i].Start(argv, dir_.File("agent" + n + ".log"), env);
    std::string got = WaitForFile(port_file, 10000);
    if (got.empty()) return false;
    ports_[i] = std::stoi(got);
    return true;
  }

  std::string NodeName(int i) const { return AgentAddr(i) + ":" + std::to_string(ports_[i]); }

  void WriteHosts(const std::string& extra = "") {
    std::string hosts;
    for (int i = 0; i < kNodes; ++i) hosts += NodeName(i) + "\n";
    WriteFile(dir_.File("hosts.txt"), hosts + extra);
  }

  // A job whose shared path is the bind-mount point, with a short probe deadline.
  std::string WriteJob(double probe_deadline_s = 2) {
    json spec = {{"name", "checked"},
                 {"launch", {{"nproc_per_node", 1}, {"command", {BinPath("rank_probe")}}}},
                 {"env_check",
                  {{"shared_path", dir_.File("cfs")},
                   {"shared_fs_types", {fstype_, "fuse.hungfs"}},
                   {"probe_deadline_s", probe_deadline_s}}}};
    std::string path = dir_.File("job.json");
    WriteFile(path, spec.dump(2));
    return path;
  }

  static void WriteFile(const std::string& path, const std::string& text) {
    ASSERT_TRUE(WriteTextFile(path, text)) << path;
  }

  RunResult Check(std::vector<std::string> extra, int timeout_ms = 30000) {
    // A generous connect timeout: under a loaded test run a just-started agent can
    // take a while to answer its first RPC (unreachable hosts are tested separately).
    std::vector<std::string> args = {BinPath("coordctl"), "check", "--hosts",
                                     dir_.File("hosts.txt"), "--connect-timeout", "10"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCommand(args, {}, timeout_ms);
  }

  static const json* FindCheck(const json& node, const std::string& id) {
    for (const json& c : node["checks"]) {
      if (c["id"] == id) return &c;
    }
    return nullptr;
  }
  static const json* FindRow(const json& report, const std::string& id) {
    for (const json& c : report["cluster"]) {
      if (c["id"] == id) return &c;
    }
    return nullptr;
  }

  TempDir dir_;
  std::string fstype_;
  Process agents_[kNodes];
  int ports_[kNodes] = {0};
};

TEST_F(EnvCheckClusterTest, HealthyNodesShareThePathAndAgree) {
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(StartAgent(i, "export")) << i;
  WriteHosts();
  RunResult r = Check({"--config", WriteJob(), "--json"});
  ASSERT_NE(r.exit_code, 2) << r.out << r.err;
  json report = json::parse(r.out);
  ASSERT_EQ(report["nodes"].size(), 4u);
  for (const json& node : report["nodes"]) {
    EXPECT_TRUE(node["reachable"].get<bool>()) << node.dump();
    const json* same = FindCheck(node, "shared_path_same_fs");
    ASSERT_NE(same, nullptr) << node.dump();
    EXPECT_TRUE((*same)["passed"].get<bool>()) << same->dump();
    EXPECT_NE((*same)["found"].get<std::string>().find("all 4 nodes"), std::string::npos);
    EXPECT_TRUE((*FindCheck(node, "shared_mount_responsive"))["passed"].get<bool>());
  }
  const json* program = FindRow(report, "same_job_program");
  ASSERT_NE(program, nullptr);
  EXPECT_TRUE((*program)["passed"].get<bool>()) << program->dump();
  EXPECT_NE((*program)["found"].get<std::string>().find("on all 4 nodes"), std::string::npos);
  EXPECT_TRUE((*FindRow(report, "clock_offset"))["passed"].get<bool>());
  // Every token was removed again, and with it the check's directory.
  RunResult left = RunCommand({"find", dir_.File("export"), "-mindepth", "2"});
  EXPECT_EQ(left.out, "") << "tokens left behind";
}

TEST_F(EnvCheckClusterTest, TheNodeWhoseSharedPathIsAnotherDirectoryAloneFailsByName) {
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(StartAgent(i, i == 2 ? "local" : "export")) << i;
  WriteHosts();
  std::string job = WriteJob();
  RunResult r = Check({"--config", job, "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  json report = json::parse(r.out);
  for (int i = 0; i < kNodes; ++i) {
    const json* same = FindCheck(report["nodes"][i], "shared_path_same_fs");
    ASSERT_NE(same, nullptr) << report["nodes"][i].dump(2);
    EXPECT_EQ((*same)["passed"].get<bool>(), i != 2) << i << ": " << same->dump();
    // The bind mount is a mount of an allowed type everywhere: only the token
    // exchange can tell that node 2 sees another directory.
    EXPECT_TRUE((*FindCheck(report["nodes"][i], "shared_mount"))["passed"].get<bool>()) << i;
  }
  std::string found = (*FindCheck(report["nodes"][2], "shared_path_same_fs"))["found"];
  EXPECT_NE(found.find("is not the filesystem the other nodes share"), std::string::npos) << found;
  EXPECT_NE(found.find("sees no other node's token"), std::string::npos) << found;

  RunResult table = Check({"--config", job});
  EXPECT_EQ(table.exit_code, 2);
  EXPECT_NE(table.out.find("FAIL  shared_path_same_fs on " + NodeName(2) + ": "), std::string::npos)
      << table.out;
}

TEST_F(EnvCheckClusterTest, ANodeWithAnotherDriverVersionIsNamed) {
  for (int i = 0; i < kNodes; ++i)
    ASSERT_TRUE(StartAgent(i, "export", i == 1 ? "535.104.05" : "550.54.15")) << i;
  WriteHosts();
  RunResult r = Check({"--config", WriteJob(), "--json"});
  ASSERT_FALSE(r.out.empty()) << r.err;
  json report = json::parse(r.out);
  for (int i = 0; i < kNodes; ++i) {
    const json* driver = FindCheck(report["nodes"][i], "gpu_driver");
    ASSERT_NE(driver, nullptr);
    EXPECT_NE((*driver)["found"].get<std::string>().find(i == 1 ? "535.104.05" : "550.54.15"),
              std::string::npos)
        << driver->dump();
  }
  const json* same = FindRow(report, "same_gpu_driver");
  ASSERT_NE(same, nullptr);
  EXPECT_FALSE((*same)["passed"].get<bool>());
  EXPECT_EQ((*same)["facts"]["odd_nodes"], NodeName(1));
  EXPECT_EQ((*same)["facts"]["cluster_value"], "550.54.15");
  EXPECT_NE((*same)["found"].get<std::string>().find("535.104.05 on " + NodeName(1)),
            std::string::npos)
      << same->dump();
}

TEST_F(EnvCheckClusterTest, AHungMountIsReportedAtTheDeadlineWithoutStallingTheOthers) {
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(StartAgent(i, i == 1 ? "hung" : "export")) << i;
  WriteHosts();
  RunResult r = Check({"--config", WriteJob(/*probe_deadline_s=*/1), "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  // One probe deadline (1 s) plus the RPCs; the check table's own backstop is 12 s.
  EXPECT_LT(r.seconds, 6.0);
  json report = json::parse(r.out);
  const json& hung = report["nodes"][1];
  ASSERT_TRUE(hung["reachable"].get<bool>()) << hung.dump();
  const json* responsive = FindCheck(hung, "shared_mount_responsive");
  ASSERT_NE(responsive, nullptr);
  EXPECT_FALSE((*responsive)["passed"].get<bool>());
  EXPECT_NE((*responsive)["found"].get<std::string>().find("did not answer within 1.0 s"),
            std::string::npos)
      << responsive->dump();
  const json* same = FindCheck(hung, "shared_path_same_fs");
  EXPECT_FALSE((*same)["passed"].get<bool>());
  EXPECT_NE((*same)["found"].get<std::string>().find("could not write its token"),
            std::string::npos);
  for (int i : {0, 2, 3}) {
    EXPECT_TRUE((*FindCheck(report["nodes"][i], "shared_path_same_fs"))["passed"].get<bool>()) << i;
    EXPECT_TRUE((*FindCheck(report["nodes"][i], "shared_mount_responsive"))["passed"].get<bool>());
  }
}

TEST_F(EnvCheckClusterTest, AnUnreachableNodeIsReportedAndTheOthersAreChecked) {
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(StartAgent(i, "export")) << i;
  WriteHosts("127.0.0.9:1\n");  // nothing listens there
  RunResult r = Check({"--config", WriteJob(), "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_LT(r.seconds, 6.0);
  json report = json::parse(r.out);
  ASSERT_EQ(report["nodes"].size(), 5u);
  EXPECT_FALSE(report["nodes"][4]["reachable"].get<bool>());
  EXPECT_NE(report["nodes"][4]["error"].get<std::string>().find("coord-agent running"),
            std::string::npos);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(report["nodes"][i]["reachable"].get<bool>());
    EXPECT_TRUE((*FindCheck(report["nodes"][i], "shared_path_same_fs"))["passed"].get<bool>()) << i;
  }
  RunResult table = Check({"--config", dir_.File("job.json")});
  EXPECT_NE(table.out.find("FAIL  127.0.0.9:1: unreachable"), std::string::npos) << table.out;
}

TEST_F(EnvCheckClusterTest, AnUnreadableOrBrokenConfigIsAClearError) {
  ASSERT_TRUE(StartAgent(0, "export"));
  WriteFile(dir_.File("hosts.txt"), NodeName(0) + "\n");
  RunResult missing = Check({"--config", dir_.File("nope.json")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find(dir_.File("nope.json")), std::string::npos) << missing.err;
  WriteFile(dir_.File("broken.json"), "{\n  \"launch\": {\"nproc_per_node\": 1,}\n}\n");
  RunResult broken = Check({"--config", dir_.File("broken.json")});
  EXPECT_EQ(broken.exit_code, 2);
  EXPECT_NE(broken.err.find(dir_.File("broken.json") + ":2:"), std::string::npos) << broken.err;
  WriteFile(dir_.File("typo.json"),
            R"({"launch": {"command": ["x"]}, "env_check": {"shared_pth": "/cfs"}})");
  RunResult typo = Check({"--config", dir_.File("typo.json")});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("env_check.shared_pth: unknown key; did you mean shared_path?"),
            std::string::npos)
      << typo.err;
}

}  // namespace
}  // namespace coord::testing
