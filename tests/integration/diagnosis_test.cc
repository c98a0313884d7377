// Straggler detection and hang reports through the whole control plane: a real coordd,
// two coord-agents on 127.0.0.2 and 127.0.0.3, and a 4-rank data-parallel gpt-rank job
// (2 nodes x 2 ranks, gloo on loopback).
//   - A rank slowed on purpose from iteration 10 (GPT_RANK_INJECT_DELAY_MS) is named,
//     with its node, in `coordctl status` (text and --json) within 20 iterations, and
//     not before it was slowed.
//   - In a clean run of the same job no rank is ever named, and every rank is scored;
//     `coordctl top` (status --watch) without a terminal prints a progress line per new
//     iteration and ends with the job.
//   - A rank stopped with SIGSTOP inside its gradient all-reduce (GPT_RANK_INJECT_HANG)
//     hangs the job; the hang failure names the collective, the stopped rank and where
//     the others wait, and its node.
//   - Ranks that write garbage, non-objects and 10 KB lines as progress records: the
//     job runs to its end on the good records, the bad ones are counted in the status
//     and warned about by the agent, and nothing crashes.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

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

class DiagnosisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartCoordd());
    ASSERT_TRUE(cluster_.StartAgents(2));
  }
  void TearDown() override {
    if (!job_.empty()) {
      Ctl({"kill", job_, "--grace", "1"});
      ExpectJobProcessesGone(job_, 10000);
    }
    cluster_.StopAll();
  }
  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) {
    return cluster_.Ctl(std::move(args), timeout_ms);
  }
  json Status() { return cluster_.Status(job_); }
  // 2 nodes x 2 ranks in data parallel 4; one micro-batch of 2 per rank and iteration.
  void Start(const std::string& name, int train_iters, const json& env, const json& launch = json::object()) {
    if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
    json job = gpt_rank::e2e::SmallJob(dir_.path());
    job["name"] = name;
    job["training"]["micro_batch_size"] = 2;
    job["training"]["global_batch_size"] = 8;
    job["training"]["train_iters"] = train_iters;
    job["training"]["eval_iters"] = 0;
    job["training"]["save"] = dir_.File(name);
    job["training"]["save_interval"] = 0;
    job["training"]["log_interval"] = 5;
    job["training"]["threads"] = 1;
    // Peers of a stopped rank wait in their collective (not time out) while coordd
    // declares the hang.
    job["parallel"] = {{"bucket_cap_mb", 0.25}, {"collective_timeout_s", 300}};
    json env_all = env;
    env_all["OMP_NUM_THREADS"] = "1";
    job["launch"] = {{"nproc_per_node", 2},
                     {"command", {gpt_rank::e2e::GptRank(), "train", "--config",
                                  dir_.File(name + ".json")}},
                     {"env", env_all},
                     {"kill_grace_s", 1}};
    if (launch.is_object()) job["launch"].update(launch);
    const std::string cfg = gpt_rank::e2e::WriteJob(dir_.File(name + ".json"), job);
    RunResult start = Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    job_ = start.out.substr(0, start.out.find('\n'));
  }
  std::string Logs() { return Ctl({"logs", job_}).out; }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::string job_;
};

TEST_F(DiagnosisTest, ARankSlowedOnPurposeIsNamedWithItsNodeWithin20Iterations) {
  constexpr int kSlowFrom = 10;
  Start("slow", 60, {{"GPT_RANK_INJECT_DELAY_MS", "2:400@" + std::to_string(kSlowFrom)}});
  json st, named;
  int64_t named_at = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        st = Status();
        const int64_t it = JsonInt64(st, "iteration");
        if (st.contains("stragglers") && !st["stragglers"].empty()) {
          named = st["stragglers"][0];
          named_at = it;
          return true;
        }
        return st.value("state", "") != "RUNNING" && st.value("state", "") != "LAUNCHING" &&
               !st.value("state", "").empty();
      },
      240000, 250))
      << st.dump(1);
  ASSERT_GE(named_at, 0) << "no straggler named; status:\n" << st.dump(1) << Logs();
  EXPECT_EQ(named["rank"], 2) << st.dump(1);
  EXPECT_EQ(named["host"], "127.0.0.3");
  EXPECT_EQ(named["node_rank"], 1);
  EXPECT_GT(named["score"].get<double>(), 1.2);
  // Named after it was slowed, and within 20 iterations of it.
  EXPECT_GE(JsonInt64(named, "since_iteration"), kSlowFrom) << st.dump(1);
  EXPECT_LE(named_at, kSlowFrom + 20) << st.dump(1);
  // Every rank is scored; the text status says it in words.
  EXPECT_EQ(st["rank_timings"].size(), 4u) << st.dump(1);
  RunResult text = Ctl({"status", job_});
  EXPECT_NE(text.out.find("straggler:  rank 2 on 127.0.0.3 (node 1): compute "), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("TIMINGS"), std::string::npos) << text.out;
  std::cerr << "coordctl status:\n" << text.out;
  EXPECT_NE(ReadAll(dir_.File("coordd.log")).find("rank 2 on 127.0.0.3:"), std::string::npos);
}

TEST_F(DiagnosisTest, NoRankIsNamedInACleanRun) {
  Start("clean", 40, json::object());
  RunResult top;
  std::thread watcher([&] { top = Ctl({"top", job_, "--interval", "0.3"}, 240000); });
  json st;
  std::string named;
  size_t scored = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        st = Status();
        if (st.contains("stragglers") && !st["stragglers"].empty() && named.empty()) {
          named = st.dump(1);
        }
        if (st.contains("rank_timings")) {
          size_t n = 0;
          for (const json& t : st["rank_timings"]) n += t.value("score", 0.0) > 0;
          scored = std::max(scored, n);
        }
        const std::string s = st.value("state", "");
        return s == "SUCCEEDED" || s == "FAILED" || s == "KILLED";
      },
      240000, 250));
  watcher.join();
  EXPECT_EQ(st["state"], "SUCCEEDED") << Logs();
  EXPECT_TRUE(named.empty()) << "a straggler was named in a clean run:\n" << named;
  EXPECT_EQ(top.exit_code, 0) << top.out << top.err;
  EXPECT_NE(top.out.find("RUNNING iteration "), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("/40 ("), std::string::npos) << top.out;
  EXPECT_NE(top.out.find(" tokens/s | step "), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("\njob " + job_ + " SUCCEEDED"), std::string::npos) << top.out;
  EXPECT_EQ(scored, 4u) << st.dump(1);
  EXPECT_EQ(JsonInt64(st, "train_iters"), 40);
  EXPECT_GT(st.value("tokens_per_s", 0.0), 0) << st.dump(1);
  job_.clear();  // nothing left to kill
}

TEST_F(DiagnosisTest, AHangReportNamesTheCollectiveAndWhereEachRankIs) {
  Start("hang", 40, {{"GPT_RANK_INJECT_HANG", "3:4"}}, {{"hang_timeout_s", 4}});
  json st;
  ASSERT_TRUE(WaitUntil(
      [&] {
        st = Status();
        const std::string s = st.value("state", "");
        return s == "SUCCEEDED" || s == "FAILED" || s == "KILLED";
      },
      240000, 250));
  ASSERT_EQ(st["state"], "FAILED") << st.dump(1) << Logs();
  const json& f = st["failure"];
  EXPECT_EQ(f["kind"], "FAILURE_HANG");
  const std::string m = f["message"];
  std::cerr << "the failure reads: " << m << "\n";
  EXPECT_NE(m.find("hang: no progress record from any rank for "), std::string::npos) << m;
  // "...; ranks 0-2 in all_reduce #N (dp, S) for T, in backward on nodes 127.0.0.2,
  //  127.0.0.3; rank 3 (stopped) in all_reduce #N (dp, S) for T, in backward on node
  //  127.0.0.3"
  std::smatch others, stopped;
  ASSERT_TRUE(std::regex_search(
      m, others, std::regex(R"(ranks 0-2 in all_reduce #(\d+) \(dp, [0-9.]+ KiB\) for [0-9.]+ s, )"
                            R"(in backward on nodes 127\.0\.0\.2, 127\.0\.0\.3)")))
      << m;
  ASSERT_TRUE(std::regex_search(
      m, stopped, std::regex(R"(rank 3 \(stopped\) in all_reduce #(\d+) \(dp, [0-9.]+ KiB\) for )"
                             R"([0-9.]+ s, in backward on node 127\.0\.0\.3)")))
      << m;
  EXPECT_EQ(others[1], stopped[1]) << "the same collective: " << m;
  EXPECT_NE(Logs().find("GPT_RANK_INJECT_HANG: stopping inside all_reduce #" + stopped[1].str()),
            std::string::npos);
  // Nothing of the job is left (the stopped rank included).
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job_).empty(); }, 15000));
}

TEST_F(DiagnosisTest, MalformedAndOversizedProgressRecordsAreCountedAndIgnored) {
  // Each rank: a good record, a line that is not JSON, a JSON array, a 10 KB line, three
  // times, then a last good record.
  const std::string script =
      "for i in 1 2 3; do "
      "echo \"{\\\"iteration\\\": $i, \\\"loss\\\": 1.5}\" >&3; "
      "echo 'not json {' >&3; echo '[1, 2]' >&3; "
      "head -c 10000 /dev/zero | tr '\\0' x >&3; echo >&3; sleep 0.3; done; "
      "echo '{\"iteration\": 4, \"loss\": 1.25}' >&3; sleep 0.8";
  json job = {{"name", "garbage"},
              {"launch",
               {{"nproc_per_node", 2}, {"command", {"/bin/sh", "-c", script}}, {"kill_grace_s", 1}}}};
  const std::string cfg = dir_.File("garbage.json");
  std::ofstream(cfg) << job.dump(2);
  RunResult start = Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", cfg});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  job_ = start.out.substr(0, start.out.find('\n'));
  json st;
  ASSERT_TRUE(WaitUntil([&] { return st = Status(), st.value("state", "") == "SUCCEEDED"; }, 30000, 100))
      << st.dump(1);
  // Heartbeats read the files every 0.5 s: the last ones were seen before the end.
  EXPECT_EQ(JsonInt64(st, "iteration"), 4) << st.dump(1);
  EXPECT_EQ(JsonInt64(st, "malformed_progress_records"), 4 * 3 * 3) << st.dump(1);
  EXPECT_TRUE(cluster_.coordd().Alive());
  for (int i = 0; i < cluster_.num_agents(); ++i) EXPECT_TRUE(cluster_.agent(i).Alive());
  const std::string agent_log = ReadAll(dir_.File("agent1.log"));
  EXPECT_NE(agent_log.find("malformed progress record(s) in "), std::string::npos) << agent_log;
  EXPECT_NE(agent_log.find("(not JSON)"), std::string::npos) << agent_log;
  RunResult text = Ctl({"status", job_});
  EXPECT_NE(text.out.find("malformed:  36 progress records ignored"), std::string::npos) << text.out;
  job_.clear();
}

}  // namespace
}  // namespace coord::testing
