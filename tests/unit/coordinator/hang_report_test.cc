// The hang report's words (coordinator/hang_report.h): ranks in the same collective are
// listed together with the longest wait, a stopped rank or one behind in sequence
// stands apart, ranks outside any collective say their phase, programs without a
// flight record and silent nodes are named, and sizes and rank lists read well.
#include "coordinator/hang_report.h"

#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

agent::RankSnapshot InCollective(int rank, uint64_t seq, const std::string& op,
                                 const std::string& group, uint64_t bytes, int64_t started,
                                 int peer = -1) {
  agent::RankSnapshot s;
  s.set_rank(rank);
  s.set_process_state("sleeping");
  s.set_phase("backward");
  s.set_time_ms(100'000);
  agent::CollectiveRecord* done = s.add_recent();
  done->set_seq(seq - 1);
  done->set_op("all_reduce");
  done->set_group("world");
  done->set_started_ms(1);
  done->set_finished_ms(2);
  agent::CollectiveRecord* c = s.add_recent();
  c->set_seq(seq);
  c->set_op(op);
  c->set_group(group);
  c->set_bytes(bytes);
  c->set_peer(peer);
  c->set_started_ms(started);
  return s;
}

TEST(HangReportTest, RanksInTheSameCollectiveGoTogetherAndTheOddOneStandsOut) {
  NodeSnapshots a{"127.0.0.2", Status::Ok(), {}, {0, 1}};
  *a.reply.add_ranks() = InCollective(0, 1842, "all_reduce", "dp", 4 << 20, 69'000);
  *a.reply.add_ranks() = InCollective(1, 1842, "all_reduce", "dp", 4 << 20, 68'500);
  NodeSnapshots b{"127.0.0.3", Status::Ok(), {}, {2, 3}};
  *b.reply.add_ranks() = InCollective(2, 1842, "all_reduce", "dp", 4 << 20, 69'100);
  agent::RankSnapshot stopped = InCollective(3, 40, "recv", "pp", 128 << 10, 70'000, 2);
  stopped.set_process_state("stopped");
  *b.reply.add_ranks() = stopped;
  EXPECT_EQ(SummarizeHang({a, b}),
            "ranks 0-2 in all_reduce #1842 (dp, 4.0 MiB) for 31 s, in backward on nodes "
            "127.0.0.2, 127.0.0.3; rank 3 (stopped) in recv #40 (pp, from stage 2, 128.0 KiB) "
            "for 30 s, in backward on node 127.0.0.3");
}

TEST(HangReportTest, ARankOutsideAnyCollectiveSaysItsPhase) {
  agent::RankSnapshot s;
  s.set_rank(5);
  s.set_phase("forward");
  s.set_micro_batch(3);
  s.set_phase_ms(4200);
  agent::CollectiveRecord* c = s.add_recent();
  c->set_seq(11);
  c->set_op("all_gather");
  c->set_finished_ms(5);
  EXPECT_EQ(DescribeRank(s).Text(), "in forward (micro-batch 3) for 4.2 s, after all_gather #11");
  s.clear_recent();
  s.set_micro_batch(-1);
  s.set_phase_ms(0);
  s.set_process_state("disk sleep");
  EXPECT_EQ(DescribeRank(s).Text(), "(disk sleep) in forward");
}

TEST(HangReportTest, NoFlightRecordAndSilentNodesAreNamed) {
  NodeSnapshots a{"n1", Status::Ok(), {}, {0, 1}};
  for (int r : {0, 1}) {
    agent::RankSnapshot* s = a.reply.add_ranks();
    s->set_rank(r);
    s->set_error("no flight record");
  }
  a.reply.mutable_ranks(1)->set_process_state("stopped");
  NodeSnapshots b{"n2:7070", Status(StatusCode::kUnavailable, "connection refused"), {}, {2, 3, 4}};
  EXPECT_EQ(SummarizeHang({a, b}),
            "rank 0 without a flight record on node n1; rank 1 (stopped) without a flight "
            "record on node n1; no answer from n2:7070 (connection refused) (ranks 2-4)");
  EXPECT_EQ(SummarizeHang({b}), "");  // nobody answered: nothing to add
}

TEST(HangReportTest, SizesAndRankLists) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(4u << 20), "4.0 MiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3.0 GiB");
  EXPECT_EQ(RankRanges({7, 0, 1, 2, 4, 6, 2}), "0-2, 4, 6, 7");
  EXPECT_EQ(RankRanges({}), "");
  EXPECT_EQ(RankRanges({3}), "3");
}

}  // namespace
}  // namespace coord::coordinator
