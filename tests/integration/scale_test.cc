// One coordd for many nodes, scaled down for CI: 256 simulated agents x 8 ranks (2,048
// ranks) plus a spare, under a real coordd. The agents are tests/programs/sim_agents.h:
// real gRPC agent servers in this process, each on its own loopback address, whose ranks
// are simulated (no processes) and report progress every 200 ms. The test launches the
// job, sees progress, loses a node (its agent vanishes) and sees the loss detected and
// the job restarted on the spare, then kills it. Limits are generous (a loaded 2-core
// box); the timings are printed (bench/scale_bench.py measures them at 1,250 agents).
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "tests/programs/sim_agents.h"
#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

using json = nlohmann::json;

constexpr int kNodes = 256;
constexpr int kNproc = 8;
constexpr int kRanks = kNodes * kNproc;

// A number from proto JSON, where 64-bit fields are strings; `missing` when absent.
int64_t Int(const json& j, const char* key, int64_t missing = 0) {
  auto it = j.find(key);
  if (it == j.end()) return missing;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  return it->is_number() ? it->get<int64_t>() : missing;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class ScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartCoordd());
    sim::SimOptions options;
    options.agents = kNodes + 1;  // the last one is the spare
    options.progress_ms = 200;
    auto sim = sim::SimCluster::Create(options);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    ASSERT_TRUE(WriteTextFile(cluster_.hosts_file(), sim_->HostsText()));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_.Logs();
    cluster_.StopAll();
    sim_.reset();
  }

  // The job's status with one rank row: its counts cover the whole job.
  json Summary(const std::string& job) {
    RunResult r = cluster_.Ctl({"status", job, "--json", "--ranks", "1"});
    return r.out.empty() ? json::object() : json::parse(r.out, nullptr, false);
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::unique_ptr<sim::SimCluster> sim_;
};

TEST_F(ScaleTest, LaunchProgressNodeLossRestartAndKillOf256NodesX8Ranks) {
  const json spec = {{"name", "scale"},
                     {"launch",
                      {{"nproc_per_node", kNproc},
                       {"command", {"sim-rank"}},
                       {"nnodes", kNodes},
                       {"kill_grace_s", 1},
                       {"max_restarts", 1},
                       {"restart_backoff_s", 0}}}};
  const std::string spec_path = dir_.File("job.json");
  ASSERT_TRUE(WriteTextFile(spec_path, spec.dump(2)));

  // Launch: coordctl start returns once every rank is RUNNING.
  auto t0 = std::chrono::steady_clock::now();
  RunResult start = cluster_.Ctl(
      {"start", "--hosts", cluster_.hosts_file(), "--config", spec_path, "--skip-checks"}, 120000);
  const double launch_s = SecondsSince(t0);
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  const std::string job = start.out.substr(0, start.out.find('\n'));
  json full = cluster_.Status(job);  // every rank, as scripts read it
  ASSERT_EQ(full.value("state", ""), "RUNNING") << full.dump().substr(0, 2000);
  ASSERT_EQ(full["ranks"].size(), static_cast<size_t>(kRanks));
  for (const json& r : full["ranks"]) ASSERT_EQ(r["state"], "RANK_RUNNING") << r.dump();
  EXPECT_EQ(sim_->Counts().running, kRanks);
  EXPECT_LE(launch_s, 60.0);

  // Progress: the iteration climbs; text status stays small (counts, 64 rank rows).
  ASSERT_TRUE(WaitUntil([&] { return Int(Summary(job), "iteration", -1) >= 3; }, 30000, 100))
      << Summary(job).dump();
  t0 = std::chrono::steady_clock::now();
  RunResult text = cluster_.Ctl({"status", job});
  const double status_s = SecondsSince(t0);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("ranks:      2048 running"), std::string::npos) << text.out;
  EXPECT_LT(text.out.size(), 64u * 1024) << "status of " << kRanks << " ranks printed in full";

  // A node is lost: detected by its silence, and the job restarts on the spare.
  const int lost = kNodes / 2;
  const std::string lost_target = sim_->Target(lost);
  const int64_t lost_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  ASSERT_TRUE(sim_->LoseNode(lost).ok());
  json s;
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Summary(job);
        return s.value("failure", json::object()).value("kind", "") == "FAILURE_NODE_LOST";
      },
      60000, 50))
      << s.dump();
  const double detect_s = static_cast<double>(Int(s["failure"], "time_ms") - lost_ms) / 1000.0;
  EXPECT_NE(s["failure"].value("message", "").find(lost_target), std::string::npos)
      << s["failure"].dump();
  EXPECT_LE(detect_s, 30.0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Summary(job);
        return s.value("state", "") == "RUNNING" && s.value("generation", 0) == 1 &&
               s["counts"].value("ranks_running", 0) == kRanks;
      },
      120000, 100))
      << s.dump();
  const double restart_s =
      static_cast<double>(Int(s["failure"], "relaunched_ms") - Int(s["failure"], "time_ms")) / 1000.0;
  full = cluster_.Status(job);
  EXPECT_EQ(full["nodes"][lost]["host"], sim_->Target(kNodes).substr(0, sim_->Target(kNodes).rfind(':')));
  EXPECT_EQ(full["spares"][0]["state"], "NODE_EXCLUDED") << full["spares"].dump();
  for (const json& r : full["ranks"]) {
    ASSERT_EQ(r["state"], "RANK_RUNNING") << r.dump();
    ASSERT_EQ(r["generation"], 1) << r.dump();
  }

  // Kill: every rank ends. The lost node cannot confirm, and the kill says so (exit 1).
  t0 = std::chrono::steady_clock::now();
  RunResult kill = cluster_.Ctl({"kill", job}, 120000);
  const double kill_s = SecondsSince(t0);
  EXPECT_NE((kill.out + kill.err).find(lost_target), std::string::npos) << kill.out << kill.err;
  EXPECT_EQ(sim_->Counts().running, 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Summary(job);
        return s.value("state", "") == "KILLED" &&
               s["counts"].value("ranks_exited_error", 0) == kRanks;
      },
      60000, 100))
      << s.dump();
  EXPECT_LE(kill_s, 60.0);

  std::cout << "scale_test: " << kNodes << " agents x " << kNproc << " ranks: launch "
            << launch_s << " s, status " << status_s << " s (" << text.out.size()
            << " bytes), node loss detected in " << detect_s << " s, restarted in " << restart_s
            << " s, kill " << kill_s << " s" << std::endl;
}

}  // namespace
}  // namespace coord::testing
