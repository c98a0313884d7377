// Chaos: a gpt-rank job on 3 simulated nodes x 2 ranks (real coord-agents on 127.0.0.2-4,
// a real coordd, checkpoints every few iterations), laid out as the 100B run is (tensor
// parallel 2 inside each node x data parallel 3 across the nodes, ZeRO-3, the optimizer
// on the CPU), survives, one after another:
//   1. SIGKILL of a rank                      -> rank exit, restart
//   2. SIGKILL of an agent, restarted later   -> node lost, restart once it is back
//   3. SIGSTOP of a rank                      -> hang (no progress), restart
//   4. the agent of a node frozen (SIGSTOP: its network is as good as cut), thawed later
//                                             -> node lost, restart once it answers
//   5. SIGKILL of coordd, started again       -> it goes on supervising; no restart
// The job must finish with final weights and optimizer state (every tensor shard's and
// ZeRO partition's file) bitwise identical to the same job run without faults, and the
// same loss at every iteration; no process of either job may be left.
// Each detection time is printed (measured, not asserted: speed belongs to bench/).
// CI runs it with `ctest -j2` on 2 cores beside other tests: every deadline below is the
// test's bound on "something is wrong", with a wide margin over what a loaded machine
// needs, never an expected speed (see kStartupTimeoutS, kHangTimeoutS, kMissedHeartbeats).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/proto_json.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr int kNodes = 3;
constexpr int kTrainIters = 150;
constexpr int kSaveInterval = 5;
// A generation's start (rendezvous, data, checkpoint load) took over 6 s once on a loaded
// 2-core machine; the startup deadline bounds it, far from anything expected.
constexpr int kStartupTimeoutS = 180;
// Between progress records: a step, or a checkpoint save stalled by a busy disk. Fault 3
// (SIGSTOP) is detected after this long; gloo's own timeout (5 min) is far above it.
constexpr int kHangTimeoutS = 15;
// coordd's heartbeat every 200 ms; a node is lost after 15 silent ones (3 s): an agent
// starved of CPU for a second is not a lost node.
constexpr int kMissedHeartbeats = 15;
// Bounds on waits for something that must happen (a restart, training to get going).
constexpr int kGetGoingMs = 240000;

// Polls every 200 ms: each look runs coordctl, and the ranks need the 2 cores.
template <typename Pred>
bool Poll(Pred pred, int timeout_ms) {
  return WaitUntil(pred, timeout_ms, /*poll_ms=*/200);
}

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(StartCoordinator(0));
    ASSERT_TRUE(cluster_.StartAgents(kNodes));
  }

  void TearDown() override {
    if (HasFailure()) std::cout << cluster_.Logs();
    for (int i = 0; i < cluster_.num_agents(); ++i) {
      // a failed test may leave one frozen
      if (cluster_.agent(i).pid() > 0) kill(cluster_.agent(i).pid(), SIGCONT);
    }
    for (const std::string& job : jobs_) ExpectJobProcessesGone(job);
    cluster_.StopAll();
  }

  // port 0: any; else the old port (a restart, as systemd would do it).
  bool StartCoordinator(int port) {
    return cluster_.StartCoordd({port,
                                 false,
                                 {"--connect-timeout-ms", "1000", "--heartbeat-ms", "200",
                                  "--missed-heartbeats", std::to_string(kMissedHeartbeats)}});
  }

  RunResult Ctl(std::vector<std::string> args) { return cluster_.Ctl(std::move(args)); }

  json Status(const std::string& job) {
    RunResult r = Ctl({"status", job, "--json"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j : json::object();
  }

  // The job spec: the same for the reference and the chaos run but for the save dir.
  std::string StartJob(const std::string& name) {
    json job = gpt_rank::e2e::SmallJob(dir_.path());
    job["name"] = name;
    job["training"]["micro_batch_size"] = 1;
    job["training"]["global_batch_size"] = 12;  // 2 micro-batches per rank
    job["training"]["train_iters"] = kTrainIters;
    job["training"]["save_interval"] = kSaveInterval;
    job["training"]["eval_interval"] = 50;
    job["training"]["threads"] = 1;
    job["training"]["save"] = dir_.File(name);
    job["training"]["load"] = dir_.File(name);
    job["parallel"]["tensor_model_parallel_size"] = 2;
    job["zero_optimization"] = {{"stage", 3}, {"offload_optimizer", {{"device", "cpu"}}}};
    const std::string cfg = dir_.File(name + ".json");
    job["launch"] = {{"nproc_per_node", 2},
                     {"command", {gpt_rank::e2e::GptRank(), "train", "--config", cfg}},
                     {"env", {{"OMP_NUM_THREADS", "1"}}},
                     {"kill_grace_s", 1},
                     {"max_restarts", 8},
                     {"restart_backoff_s", 0},
                     {"startup_timeout_s", kStartupTimeoutS},
                     {"hang_timeout_s", kHangTimeoutS}};
    gpt_rank::e2e::WriteJob(cfg, job);
    RunResult r = Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string id = r.out.substr(0, r.out.find('\n'));
    if (!id.empty()) jobs_.insert(id);
    return id;
  }

  std::string WaitEnded(const std::string& job, int timeout_ms) {
    std::string state;
    Poll(
        [&] {
          state = Status(job).value("state", "");
          return state == "SUCCEEDED" || state == "FAILED" || state == "KILLED";
        },
        timeout_ms);
    return state;
  }

  // Waits until generation `gen` runs and has saved a checkpoint of its own (so every
  // fault costs the run something to redo, and progress is real).
  ::testing::AssertionResult WaitTrainingIn(const std::string& job, int gen) {
    json s;
    int64_t first_ckpt = -1;
    bool ok = Poll(
        [&] {
          s = Status(job);
          if (s.value("generation", 0) != gen || s.value("state", "") != "RUNNING") return false;
          const int64_t it = JsonInt64(s, "iteration");
          const int64_t ckpt = JsonInt64(s, "last_checkpoint_iteration");
          if (it < 0) return false;
          if (first_ckpt < 0) first_ckpt = ckpt;
          return ckpt > first_ckpt && it > ckpt;
        },
        kGetGoingMs);
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "generation " << gen << " did not get going: " << s.dump(1) << "\ncoordd log:\n"
           << ReadAll(dir_.File("coordd.log"));
  }

  int RankPid(const std::string& job, int rank) {
    return static_cast<int>(Status(job)["ranks"][rank].value("pid", 0));
  }

  // Waits for failure number `n` (0-based) and prints its timings.
  ::testing::AssertionResult ExpectFailure(const std::string& job, int n, const std::string& kind,
                                           int64_t injected_ms, const std::string& what) {
    json f;
    bool ok = Poll(
        [&] {
          json s = Status(job);
          if (!s.contains("failures") || static_cast<int>(s["failures"].size()) <= n) return false;
          f = s["failures"][n];
          return JsonInt64(f, "relaunched_ms") > 0;
        },
        kGetGoingMs);
    if (!ok) {
      return ::testing::AssertionFailure()
             << what << ": no restart recorded: " << Status(job).dump(1) << "\ncoordd log:\n"
             << ReadAll(dir_.File("coordd.log"));
    }
    const int64_t decided = JsonInt64(f, "time_ms");
    std::cout << "chaos: " << what << ": " << f.value("kind", "?") << " detected "
              << decided - injected_ms
              << " ms after the injection (coordd: " << decided - JsonInt64(f, "occurred_ms")
              << " ms after it happened); generation gone "
              << JsonInt64(f, "confirmed_gone_ms") - decided << " ms and relaunched "
              << JsonInt64(f, "relaunched_ms") - decided << " ms after the decision; "
              << f.value("message", "") << " [" << f.value("action", "") << "]" << std::endl;
    if (f.value("kind", "") != kind) {
      return ::testing::AssertionFailure()
             << what << ": expected " << kind << ", got " << f.dump(1);
    }
    return ::testing::AssertionSuccess();
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::set<std::string> jobs_;
};

TEST_F(ChaosTest, AJobSurvivesEveryKindOfFaultAndEndsBitwiseLikeAFaultFreeRun) {
  // The reference: the same job, nothing injected.
  const std::string clean = StartJob("clean");
  ASSERT_FALSE(clean.empty());
  ASSERT_EQ(WaitEnded(clean, 300000), "SUCCEEDED") << Status(clean).dump(1);
  ASSERT_EQ(JsonInt64(Status(clean), "restarts"), 0);

  const std::string job = StartJob("chaos");
  ASSERT_FALSE(job.empty());

  // 1. A rank is SIGKILLed.
  ASSERT_TRUE(WaitTrainingIn(job, 0));
  const int rank3 = RankPid(job, 3);
  ASSERT_GT(rank3, 0);
  int64_t t = WallMs();
  ASSERT_EQ(kill(rank3, SIGKILL), 0);
  ASSERT_TRUE(ExpectFailure(job, 0, "FAILURE_RANK_EXIT", t, "SIGKILL of rank 3"));

  // 2. Node 2's agent is SIGKILLed (its ranks live on under their supervisor) and comes
  // back after the coordinator has given the node up, as systemd would restart it.
  ASSERT_TRUE(WaitTrainingIn(job, 1));
  t = WallMs();
  cluster_.agent(2).Crash();
  ASSERT_TRUE(Poll([&] { return Status(job).value("state", "") == "RESTARTING"; }, 60000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(cluster_.StartAgent(2, {cluster_.agent_port(2), false, {}}));
  ASSERT_TRUE(ExpectFailure(job, 1, "FAILURE_NODE_LOST", t, "SIGKILL of node 2's agent"));

  // 3. A rank stops (SIGSTOP): every process alive, nothing moves.
  ASSERT_TRUE(WaitTrainingIn(job, 2));
  t = WallMs();
  ASSERT_EQ(kill(RankPid(job, 1), SIGSTOP), 0);
  ASSERT_TRUE(ExpectFailure(job, 2, "FAILURE_HANG", t, "SIGSTOP of rank 1"));

  // 4. Node 1's agent freezes: no heartbeat, no answer, as with its network cut. It
  // thaws once the coordinator has given the node up.
  ASSERT_TRUE(WaitTrainingIn(job, 3));
  t = WallMs();
  ASSERT_EQ(kill(cluster_.agent(1).pid(), SIGSTOP), 0);
  ASSERT_TRUE(Poll([&] { return Status(job).value("state", "") == "RESTARTING"; }, 60000));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(kill(cluster_.agent(1).pid(), SIGCONT), 0);
  ASSERT_TRUE(ExpectFailure(job, 3, "FAILURE_NODE_LOST", t, "node 1's agent frozen"));

  // 5. coordd is SIGKILLed and started again on its port: it re-reads its journal and
  // goes on supervising the running generation.
  ASSERT_TRUE(WaitTrainingIn(job, 4));
  cluster_.coordd().Crash();
  ASSERT_TRUE(StartCoordinator(cluster_.coordd_port()));
  json after = Status(job);
  EXPECT_EQ(after.value("state", ""), "RUNNING") << after.dump(1);
  EXPECT_EQ(after.value("generation", 0), 4);

  ASSERT_EQ(WaitEnded(job, 300000), "SUCCEEDED") << Status(job).dump(1) << "\ncoordd log:\n"
                                                 << ReadAll(dir_.File("coordd.log"));
  json done = Status(job);
  EXPECT_EQ(done.value("generation", 0), 4) << "the coordd restart must not restart the job";
  EXPECT_EQ(done.value("restarts", 0), 4);

  // Bitwise the same weights and optimizer state, and the same loss at every iteration.
  char iter[32];
  std::snprintf(iter, sizeof(iter), "/iter_%07d", kTrainIters);
  int compared = 0;
  for (const char* shard : {"/mp_rank_00", "/mp_rank_01"}) {
    const std::string dir = std::string(iter) + shard;
    auto names = coord::ListDir(dir_.File("clean") + dir);
    ASSERT_TRUE(names.ok()) << names.status().ToString();
    for (const std::string& name : *names) {
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".bin") != 0) continue;
      auto want = coord::ReadFile(dir_.File("clean") + dir + "/" + name);
      auto got = coord::ReadFile(dir_.File("chaos") + dir + "/" + name);
      ASSERT_TRUE(want.ok()) << want.status().ToString();
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(*want == *got) << "final checkpoints differ in " << dir << "/" << name;
      ++compared;
    }
  }
  // Per tensor shard: the parameters and 3 ZeRO partitions of the optimizer.
  EXPECT_EQ(compared, 8);
  const auto want_loss = gpt_rank::e2e::LossPerIteration(dir_.File("clean"));
  const auto got_loss = gpt_rank::e2e::LossPerIteration(dir_.File("chaos"));
  ASSERT_EQ(want_loss.size(), static_cast<size_t>(kTrainIters));
  EXPECT_EQ(got_loss, want_loss);
}

}  // namespace
}  // namespace coord::testing
