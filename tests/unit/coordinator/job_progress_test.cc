// JobManager's progress deadlines against in-memory agents, on a FakeClock the test
// advances (no sleeping): a start-up slower than the hang timeout is not a hang; a
// rank that never writes its first record fails the startup deadline by name (with its
// stderr) even while others make progress; the hang deadline applies once every rank
// has written; exited ranks are not waited for; each generation gets its own startup
// deadline. Each deadline is checked to the step: not before it, and at it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "tests/support/fake_clock.h"
#include "job_manager_fixture.h"

namespace coord::coordinator {
namespace {

using ::testing::HasSubstr;

class JobProgressTest : public JobManagerTest {
 protected:
  // Time moves in steps of kStepMs; each step every node sends a heartbeat, with a new
  // progress record from each rank in `writing_`. The monitor sees a deadline at the
  // first step at or past it (the deadline plus one heartbeat_ms: coordd's slack).
  static constexpr int64_t kStepMs = 50;

  void SetUp() override {
    JobManagerTest::SetUp();
    // Lost after 3 x 500 ms without one: never (heartbeats every step), even when a
    // loaded machine delays their delivery by many steps.
    heartbeat_ms_ = 500;
    clock_ = fake_;
    Start();
  }
  // 2 nodes x 1 rank.
  std::string StartWith(const std::string& launch_extra) {
    job_ = MustStart(Request(2, 1, 0, launch_extra)).job_id();
    return job_;
  }
  // Advances the clock by ms in steps; after each, the heartbeats (and records) of that
  // moment, and a moment for the manager to take them in. Stops early (false) once
  // `stop` holds.
  bool Advance(int64_t ms, const std::function<bool()>& stop = {}) {
    for (int64_t t = 0; t < ms; t += kStepMs) {
      fake_->Advance(kStepMs);
      ++records_;
      for (int node = 0; node < 2; ++node) {
        agent::AgentEvent e;
        e.mutable_heartbeat()->set_running_ranks(1);
        if (writing_[node]) {
          agent::RankProgress* p = e.mutable_heartbeat()->add_progress();
          p->set_job_id(job_);
          p->set_generation(generation_);
          p->set_rank(node);  // one rank per node
          p->set_records(records_);
          p->set_iteration(records_);
          p->set_loss(std::nan(""));
          p->set_checkpoint(-1);
        }
        Node(node)->PushEvent(e);
      }
      // The events and the monitor's next look are asynchronous: let them land.
      if (stop && WaitUntil(stop, 30)) return false;
      if (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    return true;
  }

  const std::shared_ptr<FakeClock> fake_ = std::make_shared<FakeClock>();
  std::string job_;
  bool writing_[2] = {false, false};
  int generation_ = 0;
  int64_t records_ = 0;
};

TEST_F(JobProgressTest, AStartUpSlowerThanTheHangTimeoutIsNotAHangButLaterSilenceIs) {
  const std::string id = StartWith(R"(, "hang_timeout_s": 1, "startup_timeout_s": 30)");
  // 1.6 s without a first record: past hang_timeout_s (what failed the chaos test once).
  Advance(1600);
  ASSERT_EQ(StateNow(id), RUNNING) << Get(id).failure().message();
  writing_[0] = writing_[1] = true;
  Advance(300);
  ASSERT_GT(Get(id).iteration(), 0);
  // Every rank has written; now they stop: the hang deadline, 1 s after the last record.
  writing_[0] = writing_[1] = false;
  const int64_t stopped = fake_->MonoMs();
  const auto failed = [&] { return StateNow(id) == FAILED; };
  // It fires one heartbeat late (a record written just before the deadline arrives with
  // the next heartbeat): not before 1 s + 500 ms, and once the clock reaches it.
  EXPECT_TRUE(Advance(1000 + heartbeat_ms_ - kStepMs, failed)) << "failed before the deadline";
  Advance(kStepMs);
  EXPECT_TRUE(WaitUntil(failed, 10000)) << "no hang at the deadline";
  EXPECT_GE(fake_->MonoMs() - stopped, 1000 + heartbeat_ms_);
  const Failure f = Get(id).failure();
  EXPECT_EQ(f.kind(), FAILURE_HANG);
  EXPECT_THAT(f.message(), HasSubstr("hang: no progress record from any rank for "));
  EXPECT_THAT(f.message(), HasSubstr("(launch.hang_timeout_s 1.0 s)"));
}

TEST_F(JobProgressTest, ARankThatNeverWritesFailsTheStartupDeadlineByNameWhileOthersProgress) {
  Node(1)->SetStderr(1, {"mounting /cfs ...", "still waiting for /cfs"});
  const int64_t launched = fake_->MonoMs();
  const std::string id =
      StartWith(R"(, "hang_timeout_s": 5, "startup_timeout_s": 1, "max_restarts": 1,
                    "restart_backoff_s": 0)");
  writing_[0] = true;  // rank 0 makes progress; rank 1 never writes its first record
  const auto failed_once = [&] { return Get(id).failures_size() == 1; };
  EXPECT_TRUE(Advance(1000 + heartbeat_ms_ - kStepMs, failed_once))
      << "failed before the startup deadline";
  Advance(kStepMs);
  EXPECT_TRUE(WaitUntil(failed_once, 10000)) << "no failure at the startup deadline";
  EXPECT_GE(fake_->MonoMs() - launched, 1000 + heartbeat_ms_);
  JobStatus s = Get(id);
  const Failure& f = s.failures(0);
  EXPECT_EQ(f.kind(), FAILURE_STARTUP);
  EXPECT_EQ(f.rank(), 1);
  EXPECT_EQ(f.node_rank(), 1);
  EXPECT_EQ(f.message(),
            "startup deadline: rank 1 on node1:7071 (node 1) wrote no progress record within "
            "launch.startup_timeout_s 1.0 s of the launch (every other rank has written one); "
            "if start-up (rendezvous, data, checkpoint load) is this slow, raise "
            "launch.startup_timeout_s");
  EXPECT_THAT(f.stderr_tail(),
              ::testing::ElementsAre("mounting /cfs ...", "still waiting for /cfs"));

  // The next generation gets a startup deadline of its own, counted from its launch.
  ASSERT_TRUE(WaitUntil([&] { return s = Get(id), s.generation() == 1 && StateNow(id) == RUNNING; }, 3000));
  generation_ = 1;
  writing_[1] = true;
  Advance(1500);
  EXPECT_EQ(StateNow(id), RUNNING) << Get(id).failure().message();
  EXPECT_EQ(Get(id).failures_size(), 1);
}

TEST_F(JobProgressTest, ARankThatExitedIsNotWaitedForAndTheDefaultIsGenerous) {
  // startup_timeout_s left out with hang_timeout_s 1: max(600 s, 1 s), nothing fires soon.
  const std::string a = StartWith(R"(, "hang_timeout_s": 1)");
  Advance(1500);
  EXPECT_EQ(StateNow(a), RUNNING) << Get(a).failure().message();
  KillJobRequest kill;
  kill.set_job_id(a);
  KillJobReply killed;
  ASSERT_TRUE(jm_->KillJob(kill, &killed).ok());

  // Rank 1 finishes (exit 0) without a record; rank 0 writes: no startup failure.
  const std::string b = StartWith(R"(, "hang_timeout_s": 5, "startup_timeout_s": 1)");
  Node(1)->PushRankExit(b, 0, 1, 0);
  writing_[0] = true;
  Advance(1500);
  EXPECT_EQ(StateNow(b), RUNNING) << Get(b).failure().message();
  Node(0)->PushRankExit(b, 0, 0, 0);
  EXPECT_TRUE(WaitUntil([&] { return StateNow(b) == SUCCEEDED; }, 3000));
}

// What /metrics reads: each rank's newest record of the current generation, the rank's
// own text included; a record naming a rank outside the job is not kept.
TEST_F(JobProgressTest, SnapshotKeepsEachRanksLastRecord) {
  const std::string id = StartWith(R"(, "hang_timeout_s": 30)");
  writing_[0] = writing_[1] = true;
  Advance(200);
  agent::AgentEvent e;
  agent::RankProgress* p = e.mutable_heartbeat()->add_progress();
  p->set_job_id(job_);
  p->set_rank(1);
  p->set_records(++records_);
  p->set_iteration(records_);
  p->set_text(R"({"iteration":1,"time_ms":12.5})");
  agent::RankProgress* stray = e.mutable_heartbeat()->add_progress();
  *stray = *p;
  stray->set_rank(7);  // not a rank of this 2-rank job
  Node(1)->PushEvent(e);
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const JobSnapshot& j : jm_->Snapshot()) {
          if (j.status.job_id() == id && j.progress.count(1) &&
              j.progress.at(1).text() == R"({"iteration":1,"time_ms":12.5})") {
            return true;
          }
        }
        return false;
      },
      10000));
  for (const JobSnapshot& j : jm_->Snapshot()) {
    if (j.status.job_id() != id) continue;
    EXPECT_EQ(j.name, "t");
    EXPECT_EQ(j.status.state(), RUNNING);
    ASSERT_EQ(j.progress.size(), 2u);
    EXPECT_EQ(j.progress.at(0).rank(), 0);
    EXPECT_GT(j.progress.at(0).iteration(), 0);
    EXPECT_EQ(j.progress.count(7), 0u);
  }
}

}  // namespace
}  // namespace coord::coordinator
