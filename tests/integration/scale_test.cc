// One coordd for many nodes, scaled down for CI: 256 simulated agents x 8 ranks (2,048
// ranks) plus a spare, under a real coordd. The agents are tests/programs/sim_agents.h:
// real gRPC agent servers in this process, each on its own loopback address, whose ranks
// are simulated (no processes) and report progress every 200 ms. The test launches the
// job, sees progress, loses a node (its agent vanishes) and sees the loss detected and
// the job restarted on the spare, then kills it. Limits are generous (a loaded 2-core
// box); the timings are printed (bench/scale_bench.py measures them at 1,250 agents).
// A second test runs a 64-node and then a 256-node job and checks that one refresh of
// `coordctl status --watch` / `start --follow` (their GetJob request) and of the status
// page's job API stays the same size: counts and a page, not every rank.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/rpc_util.h"
#include "coordinator/cli/progress_view.h"
#include "proto/coordinator.grpc.pb.h"
#include "tests/programs/sim_agents.h"
#include "tests/support/files.h"
#include "tests/support/http_client.h"
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
    ASSERT_TRUE(cluster_.StartCoordd({0, true, {}}));  // with HTTP: the status page's API
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
      static_cast<double>(Int(s["failure"], "relaunched_ms") - Int(s["failure"], "time_ms")) /
      1000.0;
  full = cluster_.Status(job);
  EXPECT_EQ(full["nodes"][lost]["host"],
            sim_->Target(kNodes).substr(0, sim_->Target(kNodes).rfind(':')));
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

  std::cout << "scale_test: " << kNodes << " agents x " << kNproc << " ranks: launch " << launch_s
            << " s, status " << status_s << " s (" << text.out.size()
            << " bytes), node loss detected in " << detect_s << " s, restarted in " << restart_s
            << " s, kill " << kill_s << " s" << std::endl;
}

// "key: bytes" of each member, to say what grew.
std::string KeySizes(const json& j) {
  std::string out;
  for (const auto& [key, value] : j.items()) {
    out += key + ": " + std::to_string(value.dump().size()) + " ";
  }
  return out;
}

// One refresh of each poller, as it is at 64 and at 256 nodes x 8 ranks.
struct Refresh {
  size_t watch_bytes = 0;  // GetJob reply (protobuf) of status --watch's request
  double watch_s = 0;
  size_t page_bytes = 0;  // /api/jobs/ID as job.html polls it (the default page)
  double page_s = 0;
  json page;
};

TEST_F(ScaleTest, ARefreshOfWatchAndTheStatusPageStaysTheSameSizeFrom64To256Nodes) {
  auto stub = coordinator::Coordinator::NewStub(MakeChannel(cluster_.coordinator()));
  std::map<int, Refresh> at;
  for (const int nodes : {64, kNodes}) {
    const std::string hosts = dir_.File("hosts-" + std::to_string(nodes));
    std::string text;
    for (int i = 0; i < nodes; ++i) text += sim_->Target(i) + "\n";
    ASSERT_TRUE(WriteTextFile(hosts, text));
    const json spec = {{"name", "refresh"},
                       {"launch",
                        {{"nproc_per_node", kNproc},
                         {"command", {"sim-rank"}},
                         {"kill_grace_s", 1},
                         {"restart_backoff_s", 0}}}};
    const std::string spec_path = dir_.File("refresh.json");
    ASSERT_TRUE(WriteTextFile(spec_path, spec.dump(2)));
    RunResult start =
        cluster_.Ctl({"start", "--hosts", hosts, "--config", spec_path, "--skip-checks"}, 120000);
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    const std::string job = start.out.substr(0, start.out.find('\n'));
    const int ranks = nodes * kNproc;

    // Steady state: every rank has reported timings, so the full tables are full.
    const coordinator::GetJobRequest req = cli::ProgressRequest(job, 20);
    coordinator::JobStatus reply;
    ASSERT_TRUE(WaitUntil(
        [&] {
          grpc::ClientContext ctx;
          reply.Clear();
          return stub->GetJob(&ctx, req, &reply).ok() && reply.counts().rank_timings() == ranks &&
                 reply.iteration() >= 3;
        },
        60000, 100))
        << reply.ShortDebugString().substr(0, 2000);
    Refresh& r = at[nodes];
    auto t0 = std::chrono::steady_clock::now();
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->GetJob(&ctx, req, &reply).ok());
    r.watch_s = SecondsSince(t0);
    r.watch_bytes = reply.ByteSizeLong();
    EXPECT_EQ(reply.counts().ranks_running(), ranks);
    EXPECT_EQ(reply.rank_timings_size(), 20);
    EXPECT_EQ(reply.ranks_size(), 0);

    // coordctl's JSON of the same view (status --json --slowest N).
    RunResult view = cluster_.Ctl({"status", job, "--json", "--slowest", "5"});
    ASSERT_EQ(view.exit_code, 0) << view.err;
    const json v = json::parse(view.out, nullptr, false);
    EXPECT_EQ(v["rank_timings"].size(), 5u) << view.out.substr(0, 2000);
    EXPECT_EQ(v["ranks"].size(), 0u);
    EXPECT_EQ(v["counts"]["rank_timings"], ranks);
    EXPECT_LT(view.out.size(), 16u * 1024);

    t0 = std::chrono::steady_clock::now();
    HttpResult page = HttpGet(cluster_.coordd_http(), "/api/jobs/" + job, nullptr, 15000);
    r.page_s = SecondsSince(t0);
    ASSERT_EQ(page.status, 200) << page.body.substr(0, 2000);
    r.page_bytes = page.body.size();
    r.page = json::parse(page.body, nullptr, false);
    EXPECT_EQ(r.page["counts"]["ranks_running"], ranks);
    EXPECT_EQ(r.page["page"]["total"], ranks);
    EXPECT_EQ(r.page["page"]["ranks"], 256);  // the default page
    EXPECT_EQ(r.page["job"]["nodes"], nodes);
    EXPECT_EQ(r.page["job"]["ranks"], ranks);
    size_t shown = 0;
    for (const json& n : r.page["nodes"]) shown += n["ranks"].size();
    EXPECT_EQ(shown, 256u);

    RunResult kill = cluster_.Ctl({"kill", job}, 120000);
    ASSERT_EQ(kill.exit_code, 0) << kill.out << kill.err;
    std::cout << "scale_test: " << nodes << " agents x " << kNproc << " ranks: one status "
              << "--watch refresh " << r.watch_bytes << " bytes in " << r.watch_s
              << " s, one status page refresh " << r.page_bytes << " bytes in " << r.page_s << " s"
              << std::endl;
  }
  // 4x the ranks, the same size (the names and numbers in them vary by a few bytes).
  // Every rank in each reply would be ~100 KiB and ~400 KiB (protobuf) and 4x the JSON.
  EXPECT_LT(at[kNodes].watch_bytes, 8u * 1024);
  EXPECT_LT(at[kNodes].watch_bytes, at[64].watch_bytes + 512);
  EXPECT_LT(at[kNodes].page_bytes, 128u * 1024);
  EXPECT_LT(at[kNodes].page_bytes, at[64].page_bytes * 11 / 10)
      << "64 nodes: " << KeySizes(at[64].page) << "; 256: " << KeySizes(at[kNodes].page);
}

}  // namespace
}  // namespace coord::testing
