// Distributed training through the whole control plane: a real coordd and real
// coord-agents on their own loopback addresses (127.0.0.2, ...), and
// `coordctl start --hosts hosts.txt --config job.json` of a gpt-rank job. The ranks
// find each other through the rendezvous store rank 0 hosts on the MASTER_PORT coordd
// reserved, train with gloo, and finish; every iteration's loss equals the
// single-process run's within 1e-5, each rank tags its log lines with [node:rank], and
// nothing of the job is left running. Three layouts: 2 nodes x 2 ranks in data
// parallel 4 with ZeRO-1; tensor parallel 2 inside each node x data parallel 2 across
// the nodes with ZeRO-3 and the optimizer offloaded to the CPU (the 100B run's layout,
// scaled down); and 4 nodes x 1 rank in data parallel 2 x pipeline parallel 2.
// A 4-stage pipeline whose middle stage is SIGKILLed restarts from its last checkpoint
// and ends with the clean run's weights, bit for bit.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

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

class DistributedTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(cluster_.StartCoordd());
  }
  // n agents on 127.0.0.2 .. 127.0.0.(n+1), listed in hosts.txt.
  void StartAgents(int n) { ASSERT_TRUE(cluster_.StartAgents(n)); }
  void TearDown() override {
    ExpectJobProcessesGone(job_);
    cluster_.StopAll();
  }
  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) {
    return cluster_.Ctl(std::move(args), timeout_ms);
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::string job_;
};

struct Layout {
  int tp;
  int zero_stage;
  bool offload_optimizer;
  int pp = 1;
  int nodes = 2;  // agents, nproc_per_node = 4 / nodes
};

class DistributedLayouts : public DistributedTrainingTest,
                           public ::testing::WithParamInterface<Layout> {};

TEST_P(DistributedLayouts, TwoNodesTimesTwoRanksTrainLikeOneProcess) {
  const Layout layout = GetParam();
  const int nproc = 4 / layout.nodes;
  StartAgents(layout.nodes);
  json job = gpt_rank::e2e::SmallJob(dir_.path());
  job["training"]["micro_batch_size"] = 2;
  job["training"]["global_batch_size"] = 8;
  job["training"]["train_iters"] = 8;
  job["training"]["eval_interval"] = 4;
  job["training"]["threads"] = 1;
  job["zero_optimization"] = {{"stage", 1}};
  job["training"]["save"] = dir_.File("single");
  job["parallel"]["collective_timeout_s"] = 120;
  const std::string single_cfg = gpt_rank::e2e::WriteJob(dir_.File("single.json"), job);
  RunResult single =
      RunCommand({gpt_rank::e2e::GptRank(), "train", "--config", single_cfg}, {}, 120000);
  ASSERT_EQ(single.exit_code, 0) << single.err;

  job["name"] = "tiny-dp";
  job["training"]["save"] = dir_.File("distributed");
  job["parallel"]["tensor_model_parallel_size"] = layout.tp;
  job["parallel"]["pipeline_model_parallel_size"] = layout.pp;
  job["zero_optimization"] = {{"stage", layout.zero_stage}};
  if (layout.offload_optimizer) {
    job["zero_optimization"]["offload_optimizer"] = {{"device", "cpu"}};
  }
  job["launch"] = {
      {"nproc_per_node", nproc},
      {"command", {gpt_rank::e2e::GptRank(), "train", "--config", dir_.File("distributed.json")}},
      {"env", {{"OMP_NUM_THREADS", "1"}}},
      {"kill_grace_s", 2}};
  const std::string cfg = gpt_rank::e2e::WriteJob(dir_.File("distributed.json"), job);
  RunResult start = Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  job_ = start.out.substr(0, start.out.find('\n'));
  std::string state;
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunResult s = Ctl({"status", job_, "--json"});
        json j = json::parse(s.out, nullptr, false);
        state = j.is_object() ? j.value("state", "") : "";
        return state == "SUCCEEDED" || state == "FAILED" || state == "KILLED";
      },
      120000))
      << state;
  RunResult logs = Ctl({"logs", job_});
  ASSERT_EQ(state, "SUCCEEDED") << logs.out << logs.err;

  // Rank 3 ran on the last node and says so in its own tags.
  EXPECT_NE(logs.out.find("[127.0.0." + std::to_string(2 + 3 / nproc) + ":3] rank 3 of 4 (local " +
                          std::to_string(3 % nproc) + " of " + std::to_string(nproc) +
                          ", from env://)"),
            std::string::npos)
      << logs.out;
  const auto want = gpt_rank::e2e::LossPerIteration(dir_.File("single"));
  const auto got = gpt_rank::e2e::LossPerIteration(dir_.File("distributed"));
  ASSERT_EQ(want.size(), 8u);
  ASSERT_EQ(got.size(), 8u) << logs.out;
  for (const auto& [it, loss] : want) {
    EXPECT_LE(std::abs(got.at(it) - loss), 1e-5 * loss) << "iteration " << it;
  }
  if (layout.tp > 1) {  // tensor groups {0,1} and {2,3}: each inside one node
    EXPECT_NE(logs.out.find("tensor parallel: 2 ranks per group"), std::string::npos) << logs.out;
  }
  if (layout.pp > 1) {
    EXPECT_NE(logs.out.find("pipeline parallel: 2 stages (gloo), this rank is stage 0"),
              std::string::npos)
        << logs.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, DistributedLayouts,
                         ::testing::Values(Layout{1, 1, false}, Layout{2, 3, true},
                                           Layout{1, 1, false, 2, 4}),
                         [](const auto& info) {
                           return "tp" + std::to_string(info.param.tp) +
                                  (info.param.pp > 1 ? "_pp" + std::to_string(info.param.pp) : "") +
                                  "_zero" + std::to_string(info.param.zero_stage) +
                                  (info.param.offload_optimizer ? "_offload" : "");
                         });

class PipelineRestartTest : public DistributedTrainingTest {
 protected:
  json Status(const std::string& job) {
    RunResult r = Ctl({"status", job, "--json"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j : json::object();
  }
  // A 4-stage pipeline, one rank per node, checkpoints every 3 iterations, resumed
  // from its save directory on a restart.
  std::string StartPipelineJob(const std::string& name) {
    json job = gpt_rank::e2e::SmallJob(dir_.path());
    job["name"] = name;
    job["model"]["num_layers"] = 4;
    job["training"]["micro_batch_size"] = 1;
    job["training"]["global_batch_size"] = 4;  // 4 micro-batches fill the 4 stages
    job["training"]["train_iters"] = 12;
    job["training"]["save_interval"] = 3;
    job["training"]["eval_interval"] = 6;
    job["training"]["threads"] = 1;
    job["training"]["save"] = dir_.File(name);
    job["training"]["load"] = dir_.File(name);
    job["parallel"]["pipeline_model_parallel_size"] = 4;
    job["parallel"]["collective_timeout_s"] = 30;
    const std::string cfg = dir_.File(name + ".json");
    job["launch"] = {{"nproc_per_node", 1},
                     {"command", {gpt_rank::e2e::GptRank(), "train", "--config", cfg}},
                     {"env", {{"OMP_NUM_THREADS", "1"}}},
                     {"kill_grace_s", 1},
                     {"max_restarts", 2},
                     {"restart_backoff_s", 0}};
    gpt_rank::e2e::WriteJob(cfg, job);
    RunResult r = Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  std::string WaitEnded(const std::string& job) {
    std::string state;
    WaitUntil(
        [&] {
          state = Status(job).value("state", "");
          return state == "SUCCEEDED" || state == "FAILED" || state == "KILLED";
        },
        240000);
    return state;
  }
};

TEST_F(PipelineRestartTest, AKilledMiddleStageRestartsFromItsCheckpointAndEndsBitwiseLikeACleanRun) {
  StartAgents(4);
  const std::string clean = StartPipelineJob("clean");
  ASSERT_EQ(WaitEnded(clean), "SUCCEEDED") << Ctl({"logs", clean}).out;
  EXPECT_TRUE(ProcessesWithEnv("COORD_JOB_ID", clean).empty());

  job_ = StartPipelineJob("faulty");
  json s;
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Status(job_);
        return s.value("state", "") == "RUNNING" && JsonInt64(s, "iteration") >= 4 &&
               JsonInt64(s, "last_checkpoint_iteration") >= 3;
      },
      180000))
      << s.dump(1);
  const int stage2 = static_cast<int>(JsonInt64(s["ranks"][2], "pid"));
  ASSERT_GT(stage2, 0) << s.dump(1);
  ASSERT_EQ(kill(stage2, SIGKILL), 0);
  ASSERT_EQ(WaitEnded(job_), "SUCCEEDED") << Ctl({"logs", job_}).out;
  const json done = Status(job_);
  EXPECT_EQ(done.value("restarts", 0), 1) << done.dump(1);

  // Every stage's final parameters and optimizer state, bit for bit, and every loss.
  for (int stage = 0; stage < 4; ++stage) {
    const std::string shard = "/iter_0000012/mp_rank_00_00" + std::to_string(stage);
    auto names = coord::ListDir(dir_.File("clean") + shard);
    ASSERT_TRUE(names.ok()) << names.status().ToString();
    int compared = 0;
    for (const std::string& name : *names) {
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".bin") != 0) continue;
      auto want = coord::ReadFile(dir_.File("clean") + shard + "/" + name);
      auto got = coord::ReadFile(dir_.File("faulty") + shard + "/" + name);
      ASSERT_TRUE(want.ok() && got.ok()) << shard << "/" << name;
      EXPECT_TRUE(*want == *got) << "final checkpoints differ in " << shard << "/" << name;
      ++compared;
    }
    // model_optim_rng.bin (parameters) and zero_optim_rank_00000.bin (Adam's m and v)
    EXPECT_EQ(compared, 2) << shard;
  }
  EXPECT_EQ(gpt_rank::e2e::LossPerIteration(dir_.File("faulty")),
            gpt_rank::e2e::LossPerIteration(dir_.File("clean")));
}

}  // namespace
}  // namespace coord::testing
