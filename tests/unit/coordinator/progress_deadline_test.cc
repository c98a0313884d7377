// The startup and hang deadlines (coordinator/progress_deadline.h) as a pure table: which
// deadline is in force, when it expires and fires, and the failure it makes.
#include "coordinator/progress_deadline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

using ::testing::HasSubstr;

// 3 nodes x 2 ranks; startup 600 s, hang 6 s.
JobPlan Plan(int startup_ms = 600000, int hang_ms = 6000) {
  JobPlan p;
  p.nproc_per_node = 2;
  for (int n = 0; n < 3; ++n) {
    HostEntry h;
    h.host = "node" + std::to_string(n);
    h.port = 7071;
    p.hosts.push_back(h);
  }
  p.world_size = 6;
  p.startup_timeout_ms = startup_ms;
  p.hang_timeout_ms = hang_ms;
  return p;
}

ProgressSeen Seen(int64_t since, int64_t last, std::vector<int> starting) {
  ProgressSeen s;
  s.running_since_mono = since;
  s.last_progress_mono = last;
  s.starting = std::move(starting);
  return s;
}

constexpr int64_t kSlack = 200;  // one heartbeat

TEST(ProgressDeadlineTest, WhileAnyRankIsStartingOnlyTheStartupDeadlineCounts) {
  // Nothing written yet: launch + startup timeout, not the (shorter) hang timeout.
  ProgressDeadline d = NextProgressDeadline(Plan(), Seen(1000, 0, {0, 1, 2, 3, 4, 5}), kSlack);
  EXPECT_EQ(d.kind, FAILURE_STARTUP);
  EXPECT_EQ(d.expires_mono, 1000 + 600000);
  EXPECT_EQ(d.fires_mono, 1000 + 600000 + kSlack);
  // Some ranks write records (even recent ones): still the startup deadline from the
  // launch, for the ranks that have not.
  d = NextProgressDeadline(Plan(), Seen(1000, 500000, {3}), kSlack);
  EXPECT_EQ(d.kind, FAILURE_STARTUP);
  EXPECT_EQ(d.expires_mono, 601000);
}

TEST(ProgressDeadlineTest, OnceEveryRankHasWrittenTheHangDeadlineCountsFromTheNewestRecord) {
  ProgressDeadline d = NextProgressDeadline(Plan(), Seen(1000, 90000, {}), kSlack);
  EXPECT_EQ(d.kind, FAILURE_HANG);
  EXPECT_EQ(d.expires_mono, 96000);
  EXPECT_EQ(d.fires_mono, 96000 + kSlack);
  // After a coordd restart running_since is newer than the last record seen before it.
  d = NextProgressDeadline(Plan(), Seen(50000, 2000, {}), kSlack);
  EXPECT_EQ(d.expires_mono, 56000);
}

TEST(ProgressDeadlineTest, AZeroTimeoutMeansNoDeadlineInItsPhase) {
  // startup 0: nothing until every rank has written; then the hang deadline.
  EXPECT_EQ(NextProgressDeadline(Plan(0, 6000), Seen(1000, 0, {2}), kSlack).kind,
            FAILURE_KIND_UNKNOWN);
  EXPECT_EQ(NextProgressDeadline(Plan(0, 6000), Seen(1000, 5000, {}), kSlack).kind, FAILURE_HANG);
  // hang 0: a startup deadline alone.
  EXPECT_EQ(NextProgressDeadline(Plan(60000, 0), Seen(1000, 0, {2}), kSlack).kind, FAILURE_STARTUP);
  const ProgressDeadline none = NextProgressDeadline(Plan(60000, 0), Seen(1000, 5000, {}), kSlack);
  EXPECT_EQ(none.kind, FAILURE_KIND_UNKNOWN);
  EXPECT_EQ(none.fires_mono, INT64_MAX);
}

TEST(ProgressDeadlineTest, AStartupFailureNamesTheFirstSilentRankItsNodeAndTheKey) {
  const JobPlan plan = Plan();
  const ProgressSeen seen = Seen(1000, 30000, {3, 5});
  const ProgressDeadline d = NextProgressDeadline(plan, seen, kSlack);
  // Decided 700 ms after the timeout ran out, at wall time 1'000'000.
  const Failure f = ProgressFailure(plan, seen, d, d.expires_mono + 700, 1000000);
  EXPECT_EQ(f.kind(), FAILURE_STARTUP);
  EXPECT_EQ(f.rank(), 3);
  EXPECT_EQ(f.node_rank(), 1);
  EXPECT_EQ(f.host(), "node1");
  EXPECT_EQ(f.occurred_ms(), 1000000 - 700);
  EXPECT_EQ(f.message(),
            "startup deadline: rank 3 on node1:7071 (node 1) wrote no progress record within "
            "launch.startup_timeout_s 600.0 s of the launch (2 of 6 ranks have not: 3, 5); if "
            "start-up (rendezvous, data, checkpoint load) is this slow, raise "
            "launch.startup_timeout_s");
  const Failure one = ProgressFailure(plan, Seen(1000, 0, {4}), d, d.expires_mono, 5);
  EXPECT_THAT(one.message(), HasSubstr("rank 4 on node2:7071 (node 2)"));
  EXPECT_THAT(one.message(), HasSubstr("(every other rank has written one)"));
}

TEST(ProgressDeadlineTest, ABigJobListsAFewSilentRanksAndCountsTheRest) {
  JobPlan plan = Plan();
  plan.world_size = 2000;
  plan.nproc_per_node = 8;
  plan.hosts.resize(250, plan.hosts[0]);
  std::vector<int> starting;
  for (int r = 100; r < 120; ++r) starting.push_back(r);
  const ProgressSeen seen = Seen(0, 0, starting);
  const Failure f = ProgressFailure(plan, seen, NextProgressDeadline(plan, seen, 0), 600000, 0);
  EXPECT_THAT(f.message(), HasSubstr("rank 100 on node0:7071 (node 12)"));
  EXPECT_THAT(f.message(),
              HasSubstr("20 of 2000 ranks have not: 100, 101, 102, 103, 104, 105, 106, 107 and "
                        "12 more)"));
}

TEST(ProgressDeadlineTest, AHangFailureSaysHowLongNothingMovedAndTheKey) {
  const JobPlan plan = Plan();
  const ProgressSeen seen = Seen(1000, 90000, {});
  const ProgressDeadline d = NextProgressDeadline(plan, seen, kSlack);
  const Failure f = ProgressFailure(plan, seen, d, d.fires_mono, 777777);
  EXPECT_EQ(f.kind(), FAILURE_HANG);
  EXPECT_EQ(f.rank(), -1);
  EXPECT_EQ(f.occurred_ms(), 777777 - kSlack);
  EXPECT_EQ(f.message(),
            "hang: no progress record from any rank for 6.2 s (launch.hang_timeout_s 6.0 s)");
}

}  // namespace
}  // namespace coord::coordinator
