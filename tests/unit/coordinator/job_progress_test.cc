// JobManager's progress deadlines against in-memory agents: a start-up slower than the
// hang timeout is not a hang; a rank that never writes its first record fails the
// startup deadline by name (with its stderr) even while others make progress; the hang
// deadline applies once every rank has written; exited ranks are not waited for; each
// generation gets its own startup deadline. Deadlines are whole seconds, so these take
// a few seconds each.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/clock.h"
#include "job_manager_fixture.h"

namespace coord::coordinator {
namespace {

using ::testing::HasSubstr;

class JobProgressTest : public JobManagerTest {
 protected:
  // Heartbeats every 10 ms from both nodes, plus a new progress record every 10 ms from
  // each rank in `writing_`, for generation `generation_`. A node is lost after 3 x 250 ms
  // of silence: under `ctest -j2` on 2 busy cores the pump can stall for 150 ms. The
  // deadlines fire one heartbeat (250 ms) late, which the sleeps below allow for.
  void SetUp() override {
    JobManagerTest::SetUp();
    heartbeat_ms_ = 250;
    Start();
  }
  void TearDown() override {
    StopPump();
    JobManagerTest::TearDown();
  }
  void StartPump(const std::string& job) {
    pump_ = std::thread([this, job] {
      int64_t records = 0;
      while (!stop_) {
        ++records;
        for (int node = 0; node < 2; ++node) {
          agent::AgentEvent e;
          e.mutable_heartbeat()->set_running_ranks(1);
          if (writing_[node]) {
            agent::RankProgress* p = e.mutable_heartbeat()->add_progress();
            p->set_job_id(job);
            p->set_generation(generation_);
            p->set_rank(node);  // one rank per node
            p->set_records(records);
            p->set_iteration(records);
            p->set_loss(std::nan(""));
            p->set_checkpoint(-1);
          }
          Node(node)->PushEvent(e);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  void StopPump() {
    stop_ = true;
    if (pump_.joinable()) pump_.join();
  }
  // 2 nodes x 1 rank.
  std::string StartWith(const std::string& launch_extra) {
    std::string id = MustStart(Request(2, 1, 0, launch_extra)).job_id();
    StartPump(id);
    return id;
  }

  std::atomic<bool> writing_[2] = {false, false};
  std::atomic<int> generation_{0};
  std::atomic<bool> stop_{false};
  std::thread pump_;
};

TEST_F(JobProgressTest, AStartUpSlowerThanTheHangTimeoutIsNotAHangButLaterSilenceIs) {
  const std::string id = StartWith(R"(, "hang_timeout_s": 1, "startup_timeout_s": 30)");
  // 1.6 s without a first record: past hang_timeout_s + slack (what failed the chaos test
  // once).
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  ASSERT_EQ(StateNow(id), RUNNING) << Get(id).failure().message();
  writing_[0] = writing_[1] = true;
  ASSERT_TRUE(WaitFor([&] { return Get(id).iteration() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Every rank has written; now they stop: the hang deadline, 1 s after the last record.
  writing_[0] = writing_[1] = false;
  const int64_t stopped = MonoMs();
  ASSERT_TRUE(WaitFor([&] { return StateNow(id) == FAILED; }, 5000));
  EXPECT_GE(MonoMs() - stopped, 1000 - 20);  // the records in flight when it stopped
  const Failure f = Get(id).failure();
  EXPECT_EQ(f.kind(), FAILURE_HANG);
  EXPECT_THAT(f.message(), HasSubstr("hang: no progress record from any rank for "));
  EXPECT_THAT(f.message(), HasSubstr("(launch.hang_timeout_s 1.0 s)"));
}

TEST_F(JobProgressTest, ARankThatNeverWritesFailsTheStartupDeadlineByNameWhileOthersProgress) {
  Node(1)->SetStderr(1, {"mounting /cfs ...", "still waiting for /cfs"});
  const int64_t launched = MonoMs();
  const std::string id =
      StartWith(R"(, "hang_timeout_s": 5, "startup_timeout_s": 1, "max_restarts": 1,
                    "restart_backoff_s": 0)");
  writing_[0] = true;  // rank 0 makes progress; rank 1 never writes its first record
  ASSERT_TRUE(WaitFor([&] { return Get(id).failures_size() == 1; }, 5000));
  EXPECT_GE(MonoMs() - launched, 1000);
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
  ASSERT_TRUE(WaitFor([&] { return s = Get(id), s.generation() == 1 && StateNow(id) == RUNNING; }));
  generation_ = 1;
  writing_[1] = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(StateNow(id), RUNNING) << Get(id).failure().message();
  EXPECT_EQ(Get(id).failures_size(), 1);
}

TEST_F(JobProgressTest, ARankThatExitedIsNotWaitedForAndTheDefaultIsGenerous) {
  // startup_timeout_s left out with hang_timeout_s 1: max(600 s, 1 s), nothing fires soon.
  const std::string a = StartWith(R"(, "hang_timeout_s": 1)");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(StateNow(a), RUNNING) << Get(a).failure().message();
  KillJobRequest kill;
  kill.set_job_id(a);
  KillJobReply killed;
  ASSERT_TRUE(jm_->KillJob(kill, &killed).ok());
  StopPump();
  stop_ = false;

  // Rank 1 finishes (exit 0) without a record; rank 0 writes: no startup failure.
  const std::string b = StartWith(R"(, "hang_timeout_s": 5, "startup_timeout_s": 1)");
  Node(1)->PushRankExit(b, 0, 1, 0);
  writing_[0] = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(StateNow(b), RUNNING) << Get(b).failure().message();
  Node(0)->PushRankExit(b, 0, 0, 0);
  EXPECT_TRUE(WaitFor([&] { return StateNow(b) == SUCCEEDED; }));
}

}  // namespace
}  // namespace coord::coordinator
