// Distributed training through the whole control plane: a real coordd and two real
// coord-agents on their own loopback addresses (127.0.0.2, 127.0.0.3), and
// `coordctl start --hosts hosts.txt --config job.json` of a 2-node x 2-rank gpt-rank
// job. The ranks find each other through the rendezvous store rank 0 hosts on the
// MASTER_PORT coordd reserved, train with gloo, and finish; every iteration's loss
// equals the single-process run's within 1e-5, each rank tags its log lines with
// [node:rank], and nothing of the job is left running. Two layouts: data parallel 4
// with ZeRO-1, and tensor parallel 2 inside each node x data parallel 2 across the
// nodes with ZeRO-3 and the optimizer offloaded to the CPU (the 100B run's layout, scaled down).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/files.h"
#include "tests/support/process.h"
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
    const std::string port_file = dir_.File("coordd.port");
    ASSERT_TRUE(coordd_.Start({BinPath("coordd"), "--listen", "127.0.0.1:0", "--state-dir",
                               dir_.File("coordd"), "--port-file", port_file},
                              dir_.File("coordd.log")));
    const std::string port = WaitForFile(port_file, 10000);
    ASSERT_FALSE(port.empty()) << ReadAll(dir_.File("coordd.log"));
    coordinator_ = "127.0.0.1:" + std::to_string(std::stoi(port));
    std::string hosts;
    for (int i = 0; i < 2; ++i) {
      const std::string addr = "127.0.0." + std::to_string(i + 2);
      const std::string pf = dir_.File("agent" + std::to_string(i) + ".port");
      ASSERT_TRUE(agents_[i].Start({BinPath("coord-agent"), "--listen", addr + ":0", "--state-dir",
                                    dir_.File("agent" + std::to_string(i)), "--port-file", pf},
                                   dir_.File("agent" + std::to_string(i) + ".log")));
      const std::string ap = WaitForFile(pf, 10000);
      ASSERT_FALSE(ap.empty());
      hosts += addr + ":" + std::to_string(std::stoi(ap)) + "\n";
    }
    std::ofstream(dir_.File("hosts.txt")) << hosts;
  }
  void TearDown() override {
    if (!job_.empty()) {
      auto left = ProcessesWithEnv("COORD_JOB_ID", job_);
      EXPECT_TRUE(left.empty()) << left.size() << " process(es) of job " << job_ << " left";
      KillPids(left);
    }
    for (auto& a : agents_) a.Stop();
    coordd_.Stop();
  }
  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) {
    args.insert(args.begin(), {BinPath("coordctl"), "--coordinator", coordinator_});
    return RunCommand(args, {}, timeout_ms);
  }

  TempDir dir_;
  Process coordd_, agents_[2];
  std::string coordinator_, job_;
};

struct Layout {
  int tp;
  int zero_stage;
  bool offload_optimizer;
};

class DistributedLayouts : public DistributedTrainingTest,
                           public ::testing::WithParamInterface<Layout> {};

TEST_P(DistributedLayouts, TwoNodesTimesTwoRanksTrainLikeOneProcess) {
  const Layout layout = GetParam();
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
  job["zero_optimization"] = {{"stage", layout.zero_stage}};
  if (layout.offload_optimizer) {
    job["zero_optimization"]["offload_optimizer"] = {{"device", "cpu"}};
  }
  job["launch"] = {
      {"nproc_per_node", 2},
      {"command", {gpt_rank::e2e::GptRank(), "train", "--config", dir_.File("distributed.json")}},
      {"env", {{"OMP_NUM_THREADS", "1"}}},
      {"kill_grace_s", 2}};
  const std::string cfg = gpt_rank::e2e::WriteJob(dir_.File("distributed.json"), job);
  RunResult start = Ctl({"start", "--hosts", dir_.File("hosts.txt"), "--config", cfg});
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

  // Ranks 2 and 3 ran on the second node and say so in their own tags.
  EXPECT_NE(logs.out.find("[127.0.0.3:3] rank 3 of 4 (local 1 of 2, from env://)"),
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
}

INSTANTIATE_TEST_SUITE_P(Layouts, DistributedLayouts,
                         ::testing::Values(Layout{1, 1, false}, Layout{2, 3, true}),
                         [](const auto& info) {
                           return "tp" + std::to_string(info.param.tp) + "_zero" +
                                  std::to_string(info.param.zero_stage) +
                                  (info.param.offload_optimizer ? "_offload" : "");
                         });

}  // namespace
}  // namespace coord::testing
