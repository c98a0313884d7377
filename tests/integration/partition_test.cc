// A real network partition: each simulated node is a network namespace of its own,
// joined to a bridge by a veth pair (tests/support/netns_lab.h); coordd and coordctl run
// in the test's namespace. A gpt-rank job trains on 3 nodes x 1 rank with a 4th node as
// its spare. Mid-training node 1's link goes down: its agent and its rank live on but
// nobody reaches them. coordd must see the node lost, restart on the spare (the job goes
// on), and once the link is back kill the stale rank left on node 1 without touching the
// new generation (a stale rank cannot publish a checkpoint meanwhile either: fenced
// saves, tests/trainer_e2e/save_fence_test.cc). Deadlines bound "something is wrong" on a loaded 2-core machine, not expected speeds.
#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/clock.h"
#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/netns_lab.h"
#include "tests/support/process.h"
#include "tests/support/proto_json.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr int kNodes = 4;  // 3 in the job, 1 spare
// coordd's heartbeat every 200 ms; a node is lost after 15 silent ones (3 s).
constexpr int kMissedHeartbeats = 15;
constexpr int kGetGoingMs = 240000;

bool Alive(int pid) { return pid > 0 && kill(pid, 0) == 0; }

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
    if (std::string why = lab_.Create(kNodes); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(cluster_.StartCoordd(
        {0,
         false,
         {"--insecure", "--connect-timeout-ms", "1000", "--heartbeat-ms", "200", "--missed-heartbeats",
          std::to_string(kMissedHeartbeats)}}));
    std::string hosts;
    for (int i = 0; i < kNodes; ++i) {
      // Off loopback an agent wants mTLS (tls_test covers it); here plaintext will do.
      ASSERT_TRUE(cluster_.StartAgent(
          i, {0, false, {"--insecure"}, lab_.NodeAddr(i), lab_.ExecPrefix(i)}));
      hosts += cluster_.agent_grpc(i) + "\n";
    }
    ASSERT_TRUE(WriteTextFile(cluster_.hosts_file(), hosts));
  }

  void TearDown() override {
    if (HasFailure()) std::cout << cluster_.Logs();
    for (int i = 0; i < kNodes; ++i) lab_.SetLink(i, true);  // a failed test may leave one cut
    if (!job_.empty()) {
      cluster_.Ctl({"kill", job_});
      ExpectJobProcessesGone(job_, 30000);
    }
    cluster_.StopAll();
  }

  json Status() { return cluster_.Status(job_); }

  int RankPid(int rank) { return static_cast<int>(Status()["ranks"][rank].value("pid", 0)); }

  // Generation `gen` RUNNING and at least `iterations` past `from`.
  ::testing::AssertionResult WaitTraining(int gen, int64_t from, int iterations) {
    json s;
    const bool ok = WaitUntil(
        [&] {
          s = Status();
          return s.value("generation", -1) == gen && s.value("state", "") == "RUNNING" &&
                 JsonInt64(s, "iteration") >= from + iterations;
        },
        kGetGoingMs, 200);
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "generation " << gen << " not training past "
                                         << from + iterations << ": " << s.dump(1);
  }

  TempDir dir_;
  NetnsLab lab_;  // after the cluster's daemons are gone (declared first, destroyed last)
  LocalCluster cluster_{dir_};
  std::string job_;
};

TEST_F(PartitionTest, ANodeCutOffIsReplacedByTheSpareAndItsStaleRankKilledWhenTheLinkReturns) {
  json job = gpt_rank::e2e::ParallelJob(dir_.path());
  job["training"]["micro_batch_size"] = 2;
  job["training"]["global_batch_size"] = 6;
  job["training"]["train_iters"] = 100000;  // ended by the test: it only has to keep going
  job["training"]["save_interval"] = 5;
  job["training"]["eval_interval"] = 1000;
  job["training"]["save"] = dir_.File("save");
  job["training"]["load"] = dir_.File("save");
  // The cut-off rank waits in a collective far longer than the test: only coordd ends it.
  job["parallel"]["collective_timeout_s"] = 900;
  const std::string cfg = dir_.File("job.json");
  job["launch"] = {{"nnodes", 3},  // the 4th host is the spare
                   {"nproc_per_node", 1},
                   {"command", {gpt_rank::e2e::GptRank(), "train", "--config", cfg}},
                   {"env", {{"OMP_NUM_THREADS", "1"}}},
                   {"kill_grace_s", 1},
                   {"max_restarts", 2},
                   {"restart_backoff_s", 0},
                   {"startup_timeout_s", 180},
                   {"hang_timeout_s", 120}};
  gpt_rank::e2e::WriteJob(cfg, job);
  RunResult r = cluster_.Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  job_ = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(WaitTraining(0, 0, 3));

  // Rank 1 runs on node 1. Its link goes down: no heartbeat, no kill gets through.
  const int stale = RankPid(1);
  ASSERT_TRUE(Alive(stale));
  const int64_t cut_ms = WallMs();
  ASSERT_TRUE(lab_.SetLink(1, false));

  // Lost, replaced by the spare (node 3 takes node rank 1), and training goes on.
  ASSERT_TRUE(WaitTraining(1, 0, 1));
  json s = Status();
  ASSERT_GE(s["failures"].size(), 1u) << s.dump(1);
  const json failure = s["failures"][0];
  EXPECT_EQ(failure.value("kind", ""), "FAILURE_NODE_LOST") << failure.dump(1);
  EXPECT_EQ(s["nodes"][1]["host"], lab_.NodeAddr(3)) << s.dump(1);
  EXPECT_EQ(s["spares"][0]["host"], lab_.NodeAddr(1)) << s.dump(1);
  EXPECT_EQ(s["spares"][0]["state"], "NODE_EXCLUDED") << s.dump(1);
  std::cout << "partition: node lost after " << JsonInt64(failure, "time_ms") - cut_ms
            << " ms; generation 1 running on the spare "
            << JsonInt64(failure, "relaunched_ms") - cut_ms << " ms after the cut" << std::endl;
  // The partition is real: the cut-off rank is still alive, coordd could not kill it.
  EXPECT_TRUE(Alive(stale)) << "rank 1 of generation 0 died while its node was cut off";
  std::set<int> generation1;
  for (int rank = 0; rank < 3; ++rank) generation1.insert(RankPid(rank));

  // The link comes back: the stale rank is killed, the new generation is not touched.
  const int64_t healed_ms = WallMs();
  ASSERT_TRUE(lab_.SetLink(1, true));
  ASSERT_TRUE(WaitUntil([&] { return !Alive(stale); }, 60000, 100))
      << "the stale rank on node 1 outlived the partition";
  std::cout << "partition: stale rank gone " << WallMs() - healed_ms
            << " ms after the link came back" << std::endl;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Status()["failures"][0].value("action", "").find("confirmed gone once it answered") !=
               std::string::npos;
      },
      30000, 200))
      << "coordd did not record killing the left-out node's ranks: " << Status().dump(1);
  std::cout << "partition: " << Status()["failures"][0].value("action", "") << std::endl;

  const int64_t at = JsonInt64(Status(), "iteration");
  ASSERT_TRUE(WaitTraining(1, at, 3));
  s = Status();
  EXPECT_EQ(s.value("restarts", -1), 1) << s.dump(1);
  EXPECT_EQ(s["failures"].size(), 1u) << s.dump(1);
  std::set<int> now;
  for (int rank = 0; rank < 3; ++rank) now.insert(RankPid(rank));
  EXPECT_EQ(now, generation1) << "the new generation's ranks changed";
  for (int pid : generation1) EXPECT_TRUE(Alive(pid)) << pid;

  r = cluster_.Ctl({"kill", job_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectJobProcessesGone(job_, 30000);
}

}  // namespace
}  // namespace coord::testing
