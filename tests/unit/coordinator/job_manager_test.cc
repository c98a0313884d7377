// JobManager against in-memory agents: launch, supervision (exits, signals, lost
// heartbeats, stale generations, replayed snapshots), failure cleanup (kill everywhere),
// overlap, KillJob's defaults, log fan-in and restart from the journal.
#include "coordinator/job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/fs.h"
#include "fake_agent.h"
#include "job_manager_fixture.h"
#include "tests/support/fake_clock.h"

namespace coord::coordinator {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(JobManagerTest, LaunchAssignsRanksAndRuns) {
  Start();
  StartJobReply reply = MustStart(Request(4, 2));
  EXPECT_THAT(reply.job_id(), ::testing::MatchesRegex("t-[0-9a-f]{6}"));
  const JobStatus& s = reply.status();
  EXPECT_EQ(s.state(), RUNNING);
  EXPECT_EQ(s.world_size(), 8);
  EXPECT_EQ(s.master_addr(), "node0");
  EXPECT_EQ(s.master_port(), 29500);  // reserved on node 0
  EXPECT_EQ(Node(0)->reserves(), 1);
  EXPECT_EQ(Node(1)->reserves(), 0);
  for (int n = 0; n < 4; ++n) {
    auto launches = Node(n)->launches();
    ASSERT_EQ(launches.size(), 1u) << "node " << n;
    EXPECT_EQ(launches[0].node_rank(), n);
    EXPECT_EQ(launches[0].num_nodes(), 4);
    EXPECT_EQ(launches[0].world_size(), 8);
    EXPECT_THAT(launches[0].ranks(), ElementsAre(2 * n, 2 * n + 1));
    EXPECT_EQ(launches[0].master_addr(), "node0");
    EXPECT_EQ(launches[0].master_port(), 29500);
    EXPECT_EQ(s.nodes(n).state(), NODE_LAUNCHED);
    EXPECT_EQ(s.nodes(n).line(), n + 2);
  }
  EXPECT_EQ(s.ranks(5).pid(), 1005);
  EXPECT_EQ(s.ranks(5).state(), agent::RANK_RUNNING);
  EXPECT_EQ(s.ranks(5).node_rank(), 2);
  EXPECT_EQ(s.ranks(5).local_rank(), 1);
  EXPECT_TRUE(WaitUntil([&] { return Node(3)->open_watches() == 1; }, 3000));
}

TEST_F(JobManagerTest, EightNodeLaunchAddsOnlyMilliseconds) {
  Start();
  MustStart(Request(8, 8)).job_id();  // warm up: clients and watches are made once
  KillJobRequest kill;
  KillJobReply killed;
  ASSERT_TRUE(jm_->KillJob(kill, &killed).ok());
  auto t0 = std::chrono::steady_clock::now();
  StartJobReply reply = MustStart(Request(8, 8));
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(reply.status().state(), RUNNING);
  EXPECT_EQ(reply.status().world_size(), 64);
  // Instant agents: what is left is coordd's own cost (3 journal fsyncs, 2 parallel fan-outs).
  RecordProperty("start_job_us", static_cast<int>(us));
  EXPECT_LT(us, 100000) << "StartJob of 8 instant nodes took " << us << " us";
}

TEST_F(JobManagerTest, FixedMasterPortSkipsReservation) {
  Start();
  StartJobReply reply = MustStart(Request(2, 1, 0, R"(, "master_port": 29999)"));
  EXPECT_EQ(reply.status().master_port(), 29999);
  EXPECT_EQ(Node(0)->reserves(), 0);
  EXPECT_EQ(Node(1)->launches().at(0).master_port(), 29999);
}

TEST_F(JobManagerTest, AllRanksExitZeroSucceedsWithoutKilling) {
  Start();
  std::string id = MustStart(Request(2, 2)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(id, 0, 0, 0);
  Node(0)->PushRankExit(id, 0, 1, 0);
  Node(1)->PushRankExit(id, 0, 2, 0);
  EXPECT_EQ(StateNow(id), RUNNING);
  Node(1)->PushRankExit(id, 0, 3, 0);
  EXPECT_EQ(StateNow(id), SUCCEEDED);  // no wait: the event itself moved the state
  JobStatus s = Get(id);
  EXPECT_EQ(s.nodes(0).state(), NODE_DONE);
  EXPECT_GT(s.ended_ms(), 0);
  EXPECT_TRUE(Node(0)->kills().empty());
  EXPECT_TRUE(Node(1)->kills().empty());
}

TEST_F(JobManagerTest, NonZeroExitFailsWithFirstRankStderrAndKillsEveryNode) {
  Start();
  std::vector<std::string> lines;
  for (int i = 1; i <= 12; ++i) lines.push_back("err line " + std::to_string(i));
  Node(1)->SetStderr(3, lines);
  std::string id = MustStart(Request(3, 2)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->PushRankExit(id, 0, 3, 1);
  EXPECT_EQ(StateNow(id), FAILED);
  Node(2)->PushRankExit(id, 0, 4, 2);  // a later failure does not replace the first
  JobStatus s = Get(id);
  ASSERT_EQ(s.state(), FAILED);
  EXPECT_EQ(s.failure().rank(), 3);
  EXPECT_EQ(s.failure().host(), "node1");
  EXPECT_EQ(s.failure().node_rank(), 1);
  EXPECT_EQ(s.failure().exit_code(), 1);
  EXPECT_EQ(s.failure().signal(), 0);
  EXPECT_THAT(s.failure().message(), HasSubstr("rank 3 on node1:7071"));
  EXPECT_THAT(s.failure().message(), HasSubstr("exited with code 1"));
  ASSERT_EQ(s.failure().stderr_tail_size(), 10);
  EXPECT_EQ(s.failure().stderr_tail(0), "err line 3");
  EXPECT_EQ(s.failure().stderr_tail(9), "err line 12");
  auto tails = Node(1)->tails();
  ASSERT_FALSE(tails.empty());
  EXPECT_EQ(tails[0].rank(), 3);
  EXPECT_EQ(tails[0].stream(), agent::LOG_STDERR);
  EXPECT_EQ(tails[0].tail_lines(), 10);
  for (int n = 0; n < 3; ++n) {
    ASSERT_TRUE(WaitUntil([&] { return !Node(n)->kills().empty(); }, 3000)) << "node " << n;
    EXPECT_EQ(Node(n)->kills()[0].job_id(), id);
    EXPECT_EQ(Node(n)->kills()[0].generation(), 0);
    EXPECT_EQ(Node(n)->kills()[0].grace_ms(), 500);
  }
  // The SIGTERMed ranks' exits arrive after the failure (the streams stay open for them)
  // and are shown, but change neither the state nor the first failure.
  ASSERT_TRUE(WaitUntil([&] {
    JobStatus now = Get(id);
    return now.ranks(0).state() == agent::RANK_EXITED && now.ranks(5).state() == agent::RANK_EXITED;
  }, 3000));
  s = Get(id);
  EXPECT_EQ(s.ranks(0).signal(), SIGTERM);
  EXPECT_EQ(s.state(), FAILED);
  EXPECT_EQ(s.failure().rank(), 3);
  EXPECT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 0; }, 3000));  // nothing left to hear
}

TEST_F(JobManagerTest, SignalExitIsRecorded) {
  Start();
  std::string id = MustStart(Request(2, 1)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(id, 0, 0, 0, /*signal=*/9);
  JobStatus s = Get(id);
  EXPECT_EQ(s.state(), FAILED);
  EXPECT_EQ(s.failure().rank(), 0);
  EXPECT_EQ(s.failure().signal(), 9);
  EXPECT_THAT(s.failure().message(), HasSubstr("signal 9 (SIGKILL)"));
  EXPECT_TRUE(WaitUntil([&] { return !Node(1)->kills().empty(); }, 3000));
}

// The pre-launch checks find the node down: no job, and the reply's check report
// names the node.
TEST_F(JobManagerTest, UnreachableAgentRefusesTheStartNamingTheNode) {
  Start();
  Node(2)->SetPingStatus(Unavailable("failed to connect to all addresses"));
  StartJobReply reply = MustStart(Request(4, 1));
  EXPECT_TRUE(reply.job_id().empty());
  ASSERT_EQ(reply.checks().nodes_size(), 4);
  EXPECT_FALSE(reply.checks().nodes(2).reachable());
  EXPECT_EQ(reply.checks().nodes(2).name(), "node2:7071");
  EXPECT_THAT(reply.checks().nodes(2).error(), HasSubstr("is coord-agent running there?"));
  EXPECT_TRUE(reply.checks().nodes(1).reachable());
  EXPECT_EQ(reply.checks().exit_code(), 2);
  for (int n = 0; n < 4; ++n) EXPECT_TRUE(Node(n)->launches().empty()) << n;
  ListJobsReply jobs;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(JobManagerTest, ANodeCheckFailRefusesTheStartAndAWarningDoesNot) {
  Start();
  agent::CheckResult fail;
  fail.set_id("shared_mount");
  fail.set_passed(false);
  fail.set_severity(agent::CHECK_FAIL);
  fail.set_found("no mount holds /cfs");
  Node(1)->SetCheckResults({fail});
  StartJobReply refused = MustStart(Request(3, 1));
  EXPECT_TRUE(refused.job_id().empty());
  EXPECT_EQ(refused.checks().nodes(1).results(0).found(), "no mount holds /cfs");
  for (int n = 0; n < 3; ++n) EXPECT_TRUE(Node(n)->launches().empty()) << n;

  fail.set_severity(agent::CHECK_WARN);
  Node(1)->SetCheckResults({fail});
  StartJobReply started = MustStart(Request(3, 1));
  EXPECT_FALSE(started.job_id().empty());
  EXPECT_EQ(started.checks().exit_code(), 1);
  EXPECT_EQ(started.status().state(), RUNNING);
}

TEST_F(JobManagerTest, SkipChecksLaunchesWithoutCheckingAndIsJournaled) {
  Start();
  agent::CheckResult fail;
  fail.set_id("gpu_count");
  fail.set_passed(false);
  fail.set_severity(agent::CHECK_FAIL);
  Node(0)->SetCheckResults({fail});
  StartJobRequest req = Request(2, 1);
  req.set_skip_checks(true);
  StartJobReply reply = MustStart(req);
  ASSERT_FALSE(reply.job_id().empty());
  EXPECT_FALSE(reply.has_checks());
  EXPECT_EQ(Node(0)->checks(), 0);
  EXPECT_THAT(reply.warnings(), Contains(HasSubstr("--skip-checks")));
  StatusOr<std::string> journal = ReadFile(dir_ + "/journal.jsonl");
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  EXPECT_THAT(*journal, HasSubstr("\"skip_checks\":true"));
}

// Every node answers the checks' own Ping moments before the launch; a second round
// would add a round trip to every start. Without the checks, the launch asks itself.
TEST_F(JobManagerTest, ALaunchAfterTheChecksPingsEachNodeOnce) {
  Start();
  StartJobReply checked = MustStart(Request(3, 1));
  ASSERT_EQ(checked.status().state(), RUNNING);
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(Node(n)->pings(), 1) << n;
    EXPECT_EQ(Node(n)->checks(), 1) << n;
  }
  StartJobRequest req = Request(3, 1);
  req.set_skip_checks(true);
  req.set_allow_overlap(true);
  ASSERT_EQ(MustStart(req).status().state(), RUNNING);
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->pings(), 2) << n;
}

// With the checks skipped, a node that is down is found by the launch itself: a
// FAILED job naming the node.
TEST_F(JobManagerTest, UnreachableAgentFailsTheLaunchNamingHostWhenChecksAreSkipped) {
  Start();
  Node(2)->SetPingStatus(Unavailable("failed to connect to all addresses"));
  StartJobRequest req = Request(4, 1);
  req.set_skip_checks(true);
  StartJobReply reply = MustStart(req);
  const JobStatus& s = reply.status();
  ASSERT_EQ(s.state(), FAILED);
  EXPECT_THAT(s.failure().message(), HasSubstr("node2:7071 (hosts.txt:4)"));
  EXPECT_THAT(s.failure().message(), HasSubstr("is coord-agent running there?"));
  EXPECT_THAT(s.failure().message(), HasSubstr("coordctl check"));
  EXPECT_EQ(s.failure().node_rank(), 2);
  EXPECT_EQ(s.nodes(2).state(), NODE_UNREACHABLE);
  for (int n = 0; n < 4; ++n) EXPECT_TRUE(Node(n)->launches().empty()) << n;
}

TEST_F(JobManagerTest, PingTimeoutIsReportedWithinConnectTimeout) {
  Start();
  Node(1)->SetPingHangs(true);
  auto t0 = std::chrono::steady_clock::now();
  StartJobReply checked = MustStart(Request(2, 1));
  EXPECT_TRUE(checked.job_id().empty());
  EXPECT_FALSE(checked.checks().nodes(1).reachable());
  StartJobRequest req = Request(2, 1);
  req.set_skip_checks(true);
  StartJobReply reply = MustStart(req);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(ms, 2000);  // two starts, each bounded by the 300 ms connect timeout
  EXPECT_EQ(reply.status().state(), FAILED);
  EXPECT_THAT(reply.status().failure().message(), HasSubstr("did not answer Ping within 300 ms"));
  EXPECT_THAT(reply.status().failure().message(), HasSubstr("node1:7071"));
}

TEST_F(JobManagerTest, LaunchTimeoutKillsEveryNodeThatMightHaveLaunched) {
  Start();
  Node(1)->SetLaunchHangs(true);  // starts its ranks, but the reply never comes
  StartJobReply reply = MustStart(Request(3, 1));
  ASSERT_EQ(reply.status().state(), FAILED);
  EXPECT_THAT(reply.status().failure().message(), HasSubstr("node 1 node1:7071 (hosts.txt:3)"));
  EXPECT_THAT(reply.status().failure().message(), HasSubstr("did not return within 300 ms"));
  // Killed before StartJob returned, including the node whose launch timed out.
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->kills().size(), 1u) << "node " << n;
}

TEST_F(JobManagerTest, LaunchErrorOnOneNodeFailsWithItsMessageAndKillsTheOthers) {
  Start();
  Node(2)->SetLaunchStatus(
      FailedPrecondition("node 2 rank 2: cannot exec 'train': No such file or directory"));
  StartJobReply reply = MustStart(Request(4, 1));
  const JobStatus& s = reply.status();
  ASSERT_EQ(s.state(), FAILED);
  EXPECT_THAT(s.failure().message(), HasSubstr("cannot exec 'train'"));
  EXPECT_THAT(s.failure().message(), HasSubstr("node2:7071"));
  EXPECT_EQ(s.failure().node_rank(), 2);
  EXPECT_EQ(s.nodes(2).state(), NODE_FAILED);
  // "launched", or "done" once its SIGTERMed ranks' exits arrived: never "failed".
  EXPECT_THAT(s.nodes(0).state(), ::testing::AnyOf(NODE_LAUNCHED, NODE_DONE));
  for (int n = 0; n < 4; ++n) EXPECT_EQ(Node(n)->kills().size(), 1u) << "node " << n;
  EXPECT_EQ(Get(reply.job_id()).state(), FAILED);  // the SIGTERM exits keep it FAILED
}

TEST_F(JobManagerTest, OverlapIsRefusedUnlessAllowed) {
  Start();
  std::string first = MustStart(Request(2, 1, 0)).job_id();  // node0, node1
  StartJobReply reply;
  Status st = jm_->StartJob(Request(2, 1, 1), &reply);  // node1, node2
  ASSERT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr(first));
  EXPECT_THAT(st.message(), HasSubstr("node1:7071"));
  EXPECT_THAT(st.message(), ::testing::Not(HasSubstr("node2:7071")));
  EXPECT_THAT(st.message(), HasSubstr("coordctl kill " + first));
  EXPECT_THAT(st.message(), HasSubstr("--allow-overlap"));
  ListJobsReply all;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &all).ok());
  EXPECT_EQ(all.jobs_size(), 1);  // the refused job was not created

  StartJobRequest overlap = Request(2, 1, 1);
  overlap.set_allow_overlap(true);
  EXPECT_EQ(MustStart(overlap).status().state(), RUNNING);
  EXPECT_EQ(MustStart(Request(1, 1, 5)).status().state(), RUNNING);  // disjoint hosts
}

TEST_F(JobManagerTest, KillJobDefaultsAndErrors) {
  Start();
  KillJobReply reply;
  Status none = jm_->KillJob(KillJobRequest(), &reply);
  EXPECT_EQ(none.code(), StatusCode::kNotFound);
  EXPECT_THAT(none.message(), HasSubstr("no running job"));

  std::string a = MustStart(Request(2, 1, 0)).job_id();
  KillJobRequest unknown;
  unknown.set_job_id("nope-123456");
  Status st = jm_->KillJob(unknown, &reply);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("no job 'nope-123456'; `coordctl jobs` lists them"));

  std::string b = MustStart(Request(1, 1, 4)).job_id();
  st = jm_->KillJob(KillJobRequest(), &reply);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr(a));
  EXPECT_THAT(st.message(), HasSubstr(b));

  KillJobRequest kill_b;
  kill_b.set_job_id(b);
  kill_b.set_grace_ms(250);
  ASSERT_TRUE(jm_->KillJob(kill_b, &reply).ok());
  EXPECT_TRUE(reply.confirmed_clean());
  EXPECT_EQ(Node(4)->kills().at(0).generation(), -1);
  EXPECT_EQ(Node(4)->kills().at(0).grace_ms(), 250);

  // Now only `a` runs: the default picks it, every node gets the kill, the state sticks
  // although the killed ranks report their SIGTERM exits.
  KillJobReply ra;
  ASSERT_TRUE(jm_->KillJob(KillJobRequest(), &ra).ok());
  EXPECT_EQ(ra.job_id(), a);
  EXPECT_TRUE(ra.confirmed_clean());
  EXPECT_EQ(Node(0)->kills().size(), 1u);
  EXPECT_EQ(Node(1)->kills().size(), 1u);
  EXPECT_EQ(Node(1)->kills().at(0).grace_ms(), 500);  // launch.kill_grace_s
  EXPECT_EQ(Get(a).state(), KILLED);

  // Killing an ended job is safe and re-sends the kill.
  ASSERT_TRUE(jm_->KillJob(kill_b, &reply).ok());
  EXPECT_THAT(reply.message(), HasSubstr("already ended (KILLED)"));
  EXPECT_EQ(Node(4)->kills().size(), 2u);
}

TEST_F(JobManagerTest, KillReportsNodesThatCouldNotConfirm) {
  Start();
  std::string id = MustStart(Request(3, 1)).job_id();
  Node(1)->SetKillSurvivors(2);
  Node(2)->SetKillStatus(Unavailable("connection refused"));
  KillJobRequest req;
  req.set_job_id(id);
  KillJobReply reply;
  ASSERT_TRUE(jm_->KillJob(req, &reply).ok());
  EXPECT_FALSE(reply.confirmed_clean());
  EXPECT_THAT(reply.unconfirmed_hosts(), ElementsAre("node1:7071", "node2:7071"));
  EXPECT_THAT(reply.message(), HasSubstr("2 processes survived"));
  EXPECT_THAT(reply.message(), HasSubstr("connection refused"));
}

TEST_F(JobManagerTest, EventsOfAnotherGenerationOrNodeAreIgnored) {
  Start();
  std::string id = MustStart(Request(2, 1)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(id, /*generation=*/1, 0, 1);
  Node(0)->PushRankExit(id, 0, /*rank=*/1, 1);  // rank 1 lives on node1, not node0
  Node(0)->PushRankExit("other-job", 0, 0, 1);
  JobStatus s = Get(id);
  EXPECT_EQ(s.state(), RUNNING);
  EXPECT_EQ(s.ranks(0).state(), agent::RANK_RUNNING);
  EXPECT_EQ(s.ranks(1).state(), agent::RANK_RUNNING);
}

TEST_F(JobManagerTest, BrokenWatchIsReopenedAndItsSnapshotIsIdempotent) {
  Start();
  std::string id = MustStart(Request(2, 1)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(id, 0, 0, 0);
  Node(0)->BreakWatches(Unavailable("socket closed"));
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->watch_opens() == 2 && Node(0)->open_watches() == 1; }, 3000));
  // The snapshot repeated rank 0's exit; the job still waits for rank 1.
  EXPECT_EQ(StateNow(id), RUNNING);
  Node(1)->PushRankExit(id, 0, 1, 0);
  EXPECT_EQ(StateNow(id), SUCCEEDED);
  // Once nothing runs there, the streams are closed.
  EXPECT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 0; }, 3000));
}

// --- restarts (launch.max_restarts) ---

TEST_F(JobManagerTest, AFailureWithRestartsLeftKillsAndLaunchesTheNextGeneration) {
  Start();
  std::string id =
      MustStart(Request(2, 2, 0, R"(, "max_restarts": 2, "restart_backoff_s": 0)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->PushRankExit(id, 0, 3, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  JobStatus s = Get(id);
  EXPECT_EQ(s.restarts(), 1);
  EXPECT_EQ(s.max_restarts(), 2);
  EXPECT_THAT(s.failure().message(), HasSubstr("rank 3 on node1:7071"));
  for (int n = 0; n < 2; ++n) {
    // Generation 0 killed on every node before generation 1 was launched there.
    ASSERT_GE(Node(n)->kills().size(), 1u) << n;
    EXPECT_EQ(Node(n)->kills()[0].generation(), 0) << n;
    ASSERT_EQ(Node(n)->launches().size(), 2u) << n;
    EXPECT_EQ(Node(n)->launches()[1].generation(), 1) << n;
  }
  for (const agent::RankStatus& r : s.ranks()) EXPECT_EQ(r.state(), agent::RANK_RUNNING);

  // An exit of the old generation arriving late changes nothing.
  Node(0)->PushRankExit(id, 0, 0, 9);
  EXPECT_EQ(StateNow(id), RUNNING);
  EXPECT_EQ(Get(id).generation(), 1);

  Node(0)->PushRankExit(id, 1, 1, 2);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 2 && StateNow(id) == RUNNING; }, 3000));
  // The third failure finds no restart left.
  Node(1)->PushRankExit(id, 2, 2, 3);
  ASSERT_TRUE(WaitUntil([&] { return StateNow(id) == FAILED; }, 3000));
  s = Get(id);
  EXPECT_EQ(s.restarts(), 2);
  EXPECT_EQ(s.failure().rank(), 2);
  EXPECT_EQ(Node(0)->launches().size(), 3u);
}

TEST_F(JobManagerTest, AKillDuringTheRestartBackoffWinsAndNothingIsLaunched) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 3, "restart_backoff_s": 30)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return StateNow(id) == RESTARTING; }, 3000));
  // The generation is killed before the backoff starts.
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->kills().size() == 1; }, 3000));
  KillJobRequest kill;
  kill.set_job_id(id);
  KillJobReply reply;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(jm_->KillJob(kill, &reply).ok());
  EXPECT_EQ(StateNow(id), KILLED);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int n = 0; n < 2; ++n) EXPECT_EQ(Node(n)->launches().size(), 1u) << n;
  EXPECT_EQ(Get(id).generation(), 0);
  // Shutdown must not wait out the 30 s backoff either.
  jm_->Shutdown();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST_F(JobManagerTest, ARelaunchThatFailsUsesTheNextRestart) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 1, "restart_backoff_s": 0)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->SetLaunchStatus(FailedPrecondition("node 1 rank 1: cannot exec 'train'"));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return StateNow(id) == FAILED; }, 3000));
  JobStatus s = Get(id);
  EXPECT_EQ(s.generation(), 1);
  EXPECT_EQ(s.restarts(), 1);
  EXPECT_THAT(s.failure().message(), HasSubstr("cannot exec 'train'"));
}

TEST_F(JobManagerTest, ARestartRecordsDetectionKillAndRelaunchTimes) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 1, "restart_backoff_s": 0)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  const Failure f = Get(id).failure();
  EXPECT_EQ(f.kind(), FAILURE_RANK_EXIT);
  EXPECT_GT(f.occurred_ms(), 0);
  EXPECT_LE(f.occurred_ms(), f.time_ms());
  EXPECT_GE(f.confirmed_gone_ms(), f.time_ms());
  EXPECT_GE(f.relaunched_ms(), f.confirmed_gone_ms());
  EXPECT_EQ(f.action(), "restart 1 of 1");
  ASSERT_EQ(Get(id).failures_size(), 1);
  EXPECT_EQ(Get(id).failures(0).relaunched_ms(), f.relaunched_ms());
}

TEST_F(JobManagerTest, ASpareReplacesANodeThatCannotConfirmTheKill) {
  Start();
  // 3 hosts, 2 nodes wanted: node2 is a spare.
  std::string id =
      MustStart(Request(3, 2, 0, R"(, "nnodes": 2, "max_restarts": 1, "restart_backoff_s": 0)"))
          .job_id();
  ASSERT_FALSE(id.empty());
  JobStatus s = Get(id);
  ASSERT_EQ(s.nodes_size(), 2);
  EXPECT_EQ(s.world_size(), 4);
  ASSERT_EQ(s.spares_size(), 1);
  EXPECT_EQ(s.spares(0).state(), NODE_SPARE);
  EXPECT_TRUE(Node(2)->launches().empty());
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->SetKillStatus(Unavailable("connection refused"));
  Node(1)->PushRankExit(id, 0, 2, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  s = Get(id);
  EXPECT_EQ(s.nodes(1).host(), "node2");
  EXPECT_EQ(s.world_size(), 4);
  ASSERT_EQ(s.spares_size(), 1);
  EXPECT_EQ(s.spares(0).host(), "node1");
  EXPECT_EQ(s.spares(0).state(), NODE_EXCLUDED);
  EXPECT_THAT(s.failure().action(), HasSubstr("replaced node1:7071 by node2:7071"));
  ASSERT_EQ(Node(2)->launches().size(), 1u);
  EXPECT_EQ(Node(2)->launches()[0].node_rank(), 1);
  EXPECT_EQ(Node(2)->launches()[0].generation(), 1);
  EXPECT_EQ(Node(1)->launches().size(), 1u);  // only generation 0
  // A kill still reaches the node that was left out: its old ranks may be back.
  KillJobRequest kill;
  kill.set_job_id(id);
  KillJobReply reply;
  ASSERT_TRUE(jm_->KillJob(kill, &reply).ok());
  EXPECT_THAT(reply.unconfirmed_hosts(), ElementsAre("node1:7071"));
}

TEST_F(JobManagerTest, AnElasticJobGoesOnWithFewerNodesWhenThereIsNoSpare) {
  Start();
  std::string id =
      MustStart(Request(3, 2, 0, R"(, "nnodes": "2:3", "max_restarts": 1, "restart_backoff_s": 0)"))
          .job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(2)->open_watches() == 1; }, 3000));
  EXPECT_EQ(Get(id).world_size(), 6);
  Node(0)->SetKillStatus(Unavailable("connection refused"));
  Node(0)->PushRankExit(id, 0, 0, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  JobStatus s = Get(id);
  EXPECT_EQ(s.world_size(), 4);
  ASSERT_EQ(s.nodes_size(), 2);
  EXPECT_EQ(s.nodes(0).host(), "node1");
  EXPECT_EQ(s.master_addr(), "node1");  // node 0 left: the next one hosts the store
  EXPECT_THAT(s.failure().action(), HasSubstr("continuing on 2 nodes without node0:7071"));
  ASSERT_EQ(Node(1)->launches().size(), 2u);
  EXPECT_EQ(Node(1)->launches()[1].world_size(), 4);
  EXPECT_EQ(Node(1)->launches()[1].node_rank(), 0);
  EXPECT_EQ(Node(1)->launches()[1].master_addr(), "node1");
}

TEST_F(JobManagerTest, WithoutASpareTheRestartWaitsForTheNodeToComeBack) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 1, "restart_backoff_s": 0)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->SetKillStatus(Unavailable("connection refused"));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).message().find("waiting for node1:7071") == 0; }, 3000));
  EXPECT_EQ(StateNow(id), RESTARTING);
  EXPECT_EQ(Node(0)->launches().size(), 1u);
  Node(1)->SetKillStatus(Status::Ok());  // the agent is back and confirms
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 5000));
  EXPECT_EQ(Node(1)->launches().size(), 2u);
  EXPECT_THAT(Get(id).failure().action(), HasSubstr("waiting for node1:7071 (kill not confirmed)"));
}

TEST_F(JobManagerTest, AnUnreachableNodeIsWaitedForThenTheJobGoesOn) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 1, "restart_backoff_s": 0)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  // The agent is gone: every call is refused, its re-check too.
  Node(1)->SetPingStatus(Unavailable("connection refused"));
  Node(1)->SetKillStatus(Unavailable("connection refused"));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(id).message().find("waiting for node1:7071") == 0; }, 3000));
  Node(1)->SetPingStatus(Status::Ok());
  Node(1)->SetKillStatus(Status::Ok());
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 8000));
}

TEST_F(JobManagerTest, ANodeThatFailsItsRecheckIsReplacedByASpare) {
  Start();
  std::string id =
      MustStart(Request(3, 1, 0, R"(, "nnodes": 2, "max_restarts": 1, "restart_backoff_s": 0)"))
          .job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  const int checks_before = Node(1)->checks();
  agent::CheckResult fail;
  fail.set_id("gpu_driver");
  fail.set_passed(false);
  fail.set_severity(agent::CHECK_FAIL);
  fail.set_found("NVML: GPU 3 fell off the bus");
  Node(1)->SetCheckResults({fail});
  Node(1)->PushRankExit(id, 0, 1, 0, 7);  // SIGBUS
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  EXPECT_EQ(Node(1)->checks(), checks_before + 1);
  JobStatus s = Get(id);
  EXPECT_EQ(s.nodes(1).host(), "node2");
  EXPECT_THAT(s.failure().action(), HasSubstr("replaced node1:7071 by node2:7071"));
}

TEST_F(JobManagerTest, ARestartingJobGoesOnAfterACoordinatorRestart) {
  Start();
  std::string id =
      MustStart(Request(2, 1, 0, R"(, "max_restarts": 2, "restart_backoff_s": 30)")).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(1)->open_watches() == 1; }, 3000));
  Node(1)->PushRankExit(id, 0, 1, 1);
  ASSERT_TRUE(WaitUntil([&] { return StateNow(id) == RESTARTING; }, 3000));
  jm_.reset();  // coordd dies during the 30 s backoff
  Start();
  ASSERT_TRUE(WaitUntil([&] { return Get(id).generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  EXPECT_EQ(Get(id).restarts(), 1);
  EXPECT_EQ(Node(0)->launches().back().generation(), 1);
}

// On a FakeClock: node 0 sends a heartbeat every 100 ms of it, node 1 none; node 1 is
// lost once 3 heartbeats (3 x 500 ms) are missed, not before.
TEST_F(JobManagerTest, LostHeartbeatsFailTheJob) {
  auto clock = std::make_shared<FakeClock>();
  clock_ = clock;
  heartbeat_ms_ = 500;
  Start();
  std::string id = MustStart(Request(2, 1)).job_id();
  const int64_t t0 = clock->MonoMs();
  bool failed = false;
  while (!failed && clock->MonoMs() - t0 < 5000) {
    clock->Advance(100);
    Node(0)->PushHeartbeat();
    failed = WaitUntil([&] { return StateNow(id) == FAILED; }, 20);
  }
  ASSERT_TRUE(failed);
  EXPECT_GE(clock->MonoMs() - t0, 3 * 500);
  JobStatus s = Get(id);
  EXPECT_THAT(s.failure().message(), HasSubstr("node node1:7071 lost: no heartbeat for"));
  EXPECT_EQ(s.failure().node_rank(), 1);
  EXPECT_EQ(s.nodes(1).state(), NODE_LOST);
  EXPECT_TRUE(WaitUntil([&] { return !Node(0)->kills().empty(); }, 3000));
}

TEST_F(JobManagerTest, InvalidRequestsCreateNoJob) {
  Start();
  StartJobRequest bad = Request(2, 1);
  bad.set_hosts_text("node0:99999\n");
  StartJobReply reply;
  Status st = jm_->StartJob(bad, &reply);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("hosts.txt:1"));
  bad = Request(2, 1);
  bad.set_config_json("{");
  EXPECT_EQ(jm_->StartJob(bad, &reply).code(), StatusCode::kInvalidArgument);
  ListJobsReply all;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &all).ok());
  EXPECT_EQ(all.jobs_size(), 0);
  JobStatus s;
  EXPECT_EQ(jm_->GetJob(GetJobRequest(), &s).code(), StatusCode::kNotFound);
  EXPECT_TRUE(Node(0)->launches().empty());
}

TEST_F(JobManagerTest, StreamLogsMergesNodesAndFiltersByRank) {
  Start();
  Node(0)->SetStderr(0, {"from rank 0"});
  Node(1)->SetStderr(2, {"from rank 2"});
  Node(1)->SetStderr(3, {"from rank 3"});
  std::string id = MustStart(Request(2, 2)).job_id();
  StreamLogsRequest req;
  req.set_job_id(id);
  req.set_rank(-1);
  std::vector<LogLine> got;
  auto sink = [&](const LogBatch& b) {
    for (const auto& l : b.lines()) got.push_back(l);
    return true;
  };
  ASSERT_TRUE(jm_->StreamLogs(req, sink, [] { return false; }).ok());
  ASSERT_EQ(got.size(), 3u);
  for (const LogLine& l : got) {
    EXPECT_EQ(l.host(), l.rank() < 2 ? "node0" : "node1");
    EXPECT_EQ(l.node_rank(), l.rank() / 2);
  }
  got.clear();
  req.set_rank(3);
  size_t node0_tails = Node(0)->tails().size();
  ASSERT_TRUE(jm_->StreamLogs(req, sink, [] { return false; }).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text(), "from rank 3");
  EXPECT_EQ(Node(0)->tails().size(), node0_tails);  // only rank 3's node was asked
  req.set_rank(4);
  EXPECT_EQ(jm_->StreamLogs(req, sink, [] { return false; }).code(), StatusCode::kInvalidArgument);
}

TEST_F(JobManagerTest, RestartRestoresEndedJobsAndResumesRunningOnes) {
  Start();
  Node(0)->SetStderr(0, {"boom"});
  std::string ok = MustStart(Request(1, 1, 0)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(ok, 0, 0, 0);
  std::string bad = MustStart(Request(1, 1, 0)).job_id();
  ASSERT_TRUE(WaitUntil([&] { return Node(0)->open_watches() == 1; }, 3000));
  Node(0)->PushRankExit(bad, 0, 0, 7);
  ASSERT_EQ(Get(bad).state(), FAILED);                         // waits for the stderr tail
  std::string running = MustStart(Request(2, 1, 2)).job_id();  // node2, node3
  ASSERT_TRUE(WaitUntil([&] { return Node(2)->open_watches() == 1; }, 3000));
  jm_.reset();                              // coordd goes away; the job's ranks keep running
  Node(2)->PushRankExit(running, 0, 0, 0);  // exits while nobody watches

  Start();
  ListJobsReply all;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &all).ok());
  ASSERT_EQ(all.jobs_size(), 3);
  EXPECT_EQ(all.jobs(0).job_id(), ok);
  EXPECT_EQ(all.jobs(0).state(), SUCCEEDED);
  EXPECT_EQ(all.jobs(1).state(), FAILED);
  EXPECT_EQ(all.jobs(1).failure().exit_code(), 7);
  EXPECT_THAT(all.jobs(1).failure().stderr_tail(), ElementsAre("boom"));
  EXPECT_EQ(all.jobs(1).ranks(0).exit_code(), 7);
  EXPECT_EQ(all.jobs(1).ranks(0).state(), agent::RANK_EXITED);
  // The running job is supervised again: the snapshot brings rank 0's exit, rank 1's
  // exit arrives live.
  ASSERT_TRUE(WaitUntil([&] { return Node(3)->open_watches() == 1; }, 3000));
  EXPECT_EQ(Get(running).ranks(0).state(), agent::RANK_EXITED);
  EXPECT_EQ(StateNow(running), RUNNING);
  Node(3)->PushRankExit(running, 0, 1, 0);
  EXPECT_EQ(StateNow(running), SUCCEEDED);
  EXPECT_EQ(Get("").job_id(), running);  // empty id: the most recent job
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Bounded state: a small compaction threshold and 2 finished jobs kept. Jobs that ended
// over an hour ago beyond those 2 are forgotten at the next compaction, the journal
// shrinks to a snapshot, and a restarted manager replays exactly the remembered jobs;
// a running job is never forgotten.
TEST_F(JobManagerTest, CompactionForgetsOldFinishedJobsBeyondTheLimitAndReplaysTheRest) {
  auto clock = std::make_shared<coord::FakeClock>();
  clock_ = clock;
  journal_compact_bytes_ = 16 * 1024;
  keep_finished_jobs_ = 2;
  Start();
  const std::string running = MustStart(Request(1, 1, 9)).job_id();  // node9, never ends
  std::vector<std::string> finished;
  for (int i = 0; i < 6; ++i) {
    const std::string id = MustStart(Request(1, 1, i)).job_id();
    ASSERT_TRUE(WaitUntil([&] { return Node(i)->open_watches() == 1; }, 3000));
    Node(i)->PushRankExit(id, 0, 0, 0);
    ASSERT_EQ(StateNow(id), SUCCEEDED);
    finished.push_back(id);
  }
  // They all ended over an hour ago (wall time only: heartbeat deadlines stay put).
  clock->SetWallMs(clock->WallMs() + 2 * 3600 * 1000);
  const uint64_t before = FileSize(dir_ + "/journal.jsonl");
  // Journal records until the threshold is crossed: a job started and killed.
  for (int i = 0; i < 20 && FileSize(dir_ + "/journal.jsonl") >= before; ++i) {
    const std::string id = MustStart(Request(1, 1, 20 + i)).job_id();
    KillJobRequest kill;
    kill.set_job_id(id);
    KillJobReply reply;
    ASSERT_TRUE(jm_->KillJob(kill, &reply).ok());
    finished.push_back(id);
  }
  EXPECT_LT(FileSize(dir_ + "/journal.jsonl"), before) << "the journal was never compacted";

  ListJobsReply live;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &live).ok());
  std::set<std::string> remembered;
  for (const auto& j : live.jobs()) remembered.insert(j.job_id());
  EXPECT_TRUE(remembered.count(running));
  EXPECT_FALSE(remembered.count(finished[0])) << "an old finished job beyond the limit stays";
  EXPECT_TRUE(remembered.count(finished.back()));  // ended now: not an hour ago

  jm_.reset();
  Start();
  ListJobsReply replayed;
  ASSERT_TRUE(jm_->ListJobs(ListJobsRequest(), &replayed).ok());
  std::set<std::string> after;
  for (const auto& j : replayed.jobs()) after.insert(j.job_id());
  EXPECT_EQ(after, remembered);
}

}  // namespace
}  // namespace coord::coordinator
