// JobManager's diagnoses against in-memory agents on a FakeClock: the straggler scores
// from the ranks' progress timings (a slow rank named with its node in the status, no
// one named when all are equal, bad samples and malformed-record counts taken without
// harm), and the hang report (every node asked where its ranks are before the kill,
// the answer in the failure's message; a node that does not answer is named).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <thread>

#include "tests/support/fake_clock.h"
#include "job_manager_fixture.h"

namespace coord::coordinator {
namespace {

using ::testing::HasSubstr;

class JobDiagnosisTest : public JobManagerTest {
 protected:
  static constexpr int64_t kStepMs = 50;

  void SetUp() override {
    JobManagerTest::SetUp();
    heartbeat_ms_ = 500;
    clock_ = fake_;
    Start();
  }
  // 2 nodes x 2 ranks.
  std::string StartWith(const std::string& launch_extra) {
    job_ = MustStart(Request(2, 2, 0, launch_extra)).job_id();
    return job_;
  }
  // One step: the clock moves, every node sends a heartbeat; while `writing_`, each rank
  // reports one more iteration with compute time compute_(rank).
  void Step() {
    fake_->Advance(kStepMs);
    if (writing_) ++iteration_;
    for (int node = 0; node < 2; ++node) {
      agent::AgentEvent e;
      e.set_time_ms(fake_->WallMs());
      e.mutable_heartbeat()->set_running_ranks(2);
      for (int local = 0; local < 2 && writing_; ++local) {
        const int rank = node * 2 + local;
        agent::RankProgress* p = e.mutable_heartbeat()->add_progress();
        p->set_job_id(job_);
        p->set_rank(rank);
        p->set_records(iteration_ * 100);
        p->set_time_ms(fake_->WallMs());
        p->set_iteration(iteration_);
        p->set_loss(3.0);
        p->set_checkpoint(-1);
        p->set_train_iters(1000);
        p->set_tokens_per_s(4096);
        p->set_stage(0);
        p->set_malformed_records(rank == 2 ? 3 : 0);
        agent::IterationTiming* t = p->add_timings();
        t->set_iteration(iteration_);
        t->set_compute_ms(compute_(rank));
        t->set_wait_ms(10);
        t->set_time_ms(150);
      }
      Node(node)->PushEvent(e);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }

  const std::shared_ptr<FakeClock> fake_ = std::make_shared<FakeClock>();
  std::string job_;
  bool writing_ = true;
  int64_t iteration_ = 0;
  std::function<double(int)> compute_ = [](int) { return 100.0; };
};

TEST_F(JobDiagnosisTest, ASlowRankIsNamedWithItsNodeAndEqualRanksAreNot) {
  const std::string id = StartWith("");
  for (int i = 0; i < 30; ++i) Step();
  JobStatus s = Get(id);
  EXPECT_EQ(s.stragglers_size(), 0);
  ASSERT_EQ(s.rank_timings_size(), 4);
  for (const RankTiming& t : s.rank_timings()) {
    EXPECT_DOUBLE_EQ(t.score(), 1.0) << "rank " << t.rank();
    EXPECT_EQ(t.samples(), 20);
    EXPECT_EQ(t.node_rank(), t.rank() / 2);
    EXPECT_EQ(t.compute_ms(), 100);
  }
  EXPECT_EQ(s.train_iters(), 1000);
  EXPECT_EQ(s.tokens_per_s(), 4096);
  EXPECT_EQ(s.step_ms(), 150);
  EXPECT_EQ(s.malformed_progress_records(), 3);  // rank 2's count, not added up per heartbeat

  compute_ = [](int rank) { return rank == 3 ? 180.0 : 100.0; };
  const int64_t slow_from = iteration_ + 1;
  int steps = 0;
  while (Get(id).stragglers_size() == 0 && steps < 30) {
    Step();
    ++steps;
  }
  const int64_t named_ms = fake_->WallMs();
  s = Get(id);
  ASSERT_EQ(s.stragglers_size(), 1);
  // Half the window, confirmed over 3 more, re-scored every 100 ms (2 steps).
  EXPECT_LE(s.stragglers(0).since_iteration() - slow_from, 15);
  for (int i = 0; i < 20; ++i) Step();  // a window of slow samples
  s = Get(id);
  ASSERT_EQ(s.stragglers_size(), 1);
  const Straggler& g = s.stragglers(0);
  EXPECT_EQ(g.rank(), 3);
  EXPECT_EQ(g.host(), "node1");
  EXPECT_EQ(g.node_rank(), 1);
  EXPECT_DOUBLE_EQ(g.score(), 1.8);
  EXPECT_EQ(g.compute_ms(), 180);
  EXPECT_EQ(g.peers_compute_ms(), 100);
  EXPECT_EQ(g.since_ms(), named_ms);
  EXPECT_EQ(s.state(), RUNNING);  // named, not failed

  // Nonsense from an agent (a NaN, a rank the job does not have) changes nothing.
  agent::AgentEvent e;
  agent::RankProgress* p = e.mutable_heartbeat()->add_progress();
  p->set_job_id(id);
  p->set_rank(99);
  p->set_records(1 << 30);
  p->add_timings()->set_compute_ms(1);
  p = e.mutable_heartbeat()->add_progress();
  p->set_job_id(id);
  p->set_rank(0);
  p->set_records(1 << 30);
  p->add_timings()->set_compute_ms(std::nan(""));
  Node(0)->PushEvent(e);
  s = Get(id);
  EXPECT_EQ(s.rank_timings_size(), 4);
  EXPECT_EQ(s.stragglers(0).rank(), 3);
}

TEST_F(JobDiagnosisTest, AHangReportSaysWhereEachRankIsBeforeTheKill) {
  agent::RankSnapshotsReply node0;
  for (int rank : {0, 1}) {
    agent::RankSnapshot* r = node0.add_ranks();
    r->set_rank(rank);
    r->set_process_state("sleeping");
    r->set_phase("backward");
    r->set_time_ms(10'000);
    agent::CollectiveRecord* c = r->add_recent();
    c->set_seq(41);
    c->set_op("all_reduce");
    c->set_group("dp");
    c->set_bytes(4 << 20);
    c->set_peer(-1);
    c->set_started_ms(1000 + rank);
  }
  Node(0)->SetRankSnapshots(node0);
  Node(1)->SetRankSnapshots(Status(StatusCode::kDeadlineExceeded, "deadline exceeded"));
  const std::string id = StartWith(R"(, "hang_timeout_s": 1)");
  for (int i = 0; i < 5; ++i) Step();
  writing_ = false;
  const auto failed = [&] { return StateNow(id) == FAILED; };
  for (int i = 0; i < 100 && !failed(); ++i) Step();
  ASSERT_TRUE(failed());
  const Failure f = Get(id).failure();  // waits for the report
  EXPECT_EQ(f.kind(), FAILURE_HANG);
  EXPECT_THAT(f.message(), HasSubstr("hang: no progress record from any rank for "));
  EXPECT_THAT(f.message(), HasSubstr("; ranks 0, 1 in all_reduce #41 (dp, 4.0 MiB) for 9.0 s, in "
                                     "backward on node node0; no answer from node1 (deadline "
                                     "exceeded) (ranks 2, 3)"));
  ASSERT_EQ(Node(0)->snapshot_requests().size(), 1u);
  EXPECT_EQ(Node(0)->snapshot_requests()[0].job_id(), id);
  EXPECT_EQ(Node(0)->snapshot_requests()[0].generation(), 0);
  // And then the kill.
  EXPECT_TRUE(WaitUntil([&] { return !Node(0)->kills().empty(); }, 5000));
}

}  // namespace
}  // namespace coord::coordinator
