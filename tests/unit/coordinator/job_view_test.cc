// Counting and paging of a job's status tables (coordinator/job_view.h): the counts cover
// the whole job, a page holds its ranks, their nodes and the nodes in trouble, and the
// job's own tables are left as they were.
#include "coordinator/job_view.h"

#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

namespace agent = coord::agent;

// nodes x nproc ranks, all running, each node launched.
JobStatus Job(int nodes, int nproc) {
  JobStatus st;
  st.set_job_id("j");
  st.set_world_size(nodes * nproc);
  for (int n = 0; n < nodes; ++n) {
    NodeStatus* node = st.add_nodes();
    node->set_host("h" + std::to_string(n));
    node->set_node_rank(n);
    node->set_state(NODE_LAUNCHED);
    for (int l = 0; l < nproc; ++l) {
      agent::RankStatus* r = st.add_ranks();
      r->set_rank(n * nproc + l);
      r->set_node_rank(n);
      r->set_local_rank(l);
      r->set_state(agent::RANK_RUNNING);
      RankTiming* t = st.add_rank_timings();
      t->set_rank(n * nproc + l);
      t->set_node_rank(n);
    }
  }
  NodeStatus* spare = st.add_spares();
  spare->set_host("spare");
  spare->set_state(NODE_SPARE);
  return st;
}

TEST(JobViewTest, CountsRanksByOutcomeAndNodesByState) {
  JobStatus st = Job(3, 2);
  st.mutable_ranks(0)->set_state(agent::RANK_EXITED);  // exit 0
  st.mutable_ranks(1)->set_state(agent::RANK_EXITED);
  st.mutable_ranks(1)->set_signal(15);
  st.mutable_ranks(2)->set_state(agent::RANK_STATE_UNKNOWN);
  st.mutable_nodes(2)->set_state(NODE_LOST);
  const JobCounts c = CountJob(st);
  EXPECT_EQ(c.nodes(), 3);
  EXPECT_EQ(c.ranks_running(), 3);
  EXPECT_EQ(c.ranks_exited_ok(), 1);
  EXPECT_EQ(c.ranks_exited_error(), 1);
  EXPECT_EQ(c.ranks_not_started(), 1);
  ASSERT_EQ(c.node_states_size(), 2);
  EXPECT_EQ(c.node_states(0).state(), NODE_LAUNCHED);
  EXPECT_EQ(c.node_states(0).count(), 2);
  EXPECT_EQ(c.node_states(1).state(), NODE_LOST);
  EXPECT_EQ(c.node_states(1).count(), 1);
}

TEST(JobViewTest, APageHoldsItsRanksTheirNodesAndTheNodesInTrouble) {
  JobStatus st = Job(100, 8);  // 800 ranks
  st.mutable_nodes(90)->set_state(NODE_LOST);
  const JobStatus before = st;
  JobStatus page;
  CopyPage(&st, 16, 8, &page);  // ranks 8..23: nodes 1 and 2
  ASSERT_EQ(page.ranks_size(), 16);
  EXPECT_EQ(page.ranks(0).rank(), 8);
  EXPECT_EQ(page.ranks(15).rank(), 23);
  ASSERT_EQ(page.nodes_size(), 3);
  EXPECT_EQ(page.nodes(0).node_rank(), 1);
  EXPECT_EQ(page.nodes(1).node_rank(), 2);
  EXPECT_EQ(page.nodes(2).node_rank(), 90);  // lost: shown wherever the page is
  ASSERT_EQ(page.rank_timings_size(), 16);
  EXPECT_EQ(page.rank_timings(0).rank(), 8);
  EXPECT_EQ(page.spares_size(), 1);
  EXPECT_EQ(page.counts().ranks_running(), 800);
  EXPECT_EQ(page.job_id(), "j");
  EXPECT_EQ(page.world_size(), 800);
  EXPECT_EQ(st.SerializeAsString(), before.SerializeAsString());  // the job is untouched
}

TEST(JobViewTest, APagePastTheEndIsEmptyAndNoLimitIsEverything) {
  JobStatus st = Job(4, 2);
  JobStatus page;
  CopyPage(&st, 5, 100, &page);
  EXPECT_EQ(page.ranks_size(), 0);
  EXPECT_EQ(page.counts().ranks_running(), 8);
  JobStatus all;
  CopyPage(&st, 0, 0, &all);
  EXPECT_EQ(all.ranks_size(), 8);
  EXPECT_EQ(all.nodes_size(), 4);
  EXPECT_EQ(all.rank_timings_size(), 8);
  EXPECT_EQ(all.counts().nodes(), 4);
}

TEST(JobViewTest, WithoutTablesKeepsTheRestAndTheCounts) {
  JobStatus st = Job(2, 2);
  st.set_message("running");
  const JobStatus before = st;
  JobStatus out;
  CopyWithoutTables(&st, &out);
  EXPECT_EQ(out.ranks_size(), 0);
  EXPECT_EQ(out.nodes_size(), 0);
  EXPECT_EQ(out.rank_timings_size(), 0);
  EXPECT_EQ(out.spares_size(), 0);
  EXPECT_EQ(out.message(), "running");
  EXPECT_EQ(out.counts().nodes(), 2);
  EXPECT_EQ(out.counts().ranks_running(), 4);
  EXPECT_EQ(st.SerializeAsString(), before.SerializeAsString());
}

TEST(JobViewTest, SlowestHoldsTheHighestScoresInRankOrderAndTheirNodes) {
  JobStatus st = Job(100, 8);  // 800 ranks, every score 0
  st.mutable_rank_timings(700)->set_score(1.9);
  st.mutable_rank_timings(5)->set_score(1.2);
  st.mutable_rank_timings(300)->set_score(1.2);  // a tie: the lower rank goes first
  st.mutable_rank_timings(301)->set_score(1.1);
  Straggler* g = st.add_stragglers();
  g->set_rank(450);
  g->set_node_rank(56);
  const JobStatus before = st;
  JobStatus out;
  CopySlowest(&st, 3, &out);
  EXPECT_EQ(out.ranks_size(), 0);
  ASSERT_EQ(out.rank_timings_size(), 3);
  EXPECT_EQ(out.rank_timings(0).rank(), 5);
  EXPECT_EQ(out.rank_timings(1).rank(), 300);
  EXPECT_EQ(out.rank_timings(2).rank(), 700);
  std::vector<int> nodes;
  for (const NodeStatus& n : out.nodes()) nodes.push_back(n.node_rank());
  EXPECT_EQ(nodes, (std::vector<int>{0, 37, 56, 87}));  // the ranks' and the straggler's
  EXPECT_EQ(out.stragglers_size(), 1);
  EXPECT_EQ(out.counts().nodes(), 100);
  EXPECT_EQ(out.counts().rank_timings(), 800);
  EXPECT_EQ(out.counts().ranks_running(), 800);
  EXPECT_EQ(st.SerializeAsString(), before.SerializeAsString());

  JobStatus more;
  CopySlowest(&st, 1000, &more);  // more than there are: all of them
  EXPECT_EQ(more.rank_timings_size(), 800);
}

TEST(JobViewTest, TroubleListsFailuresErrorsStragglersAndStalledRanksOnce) {
  JobStatus st = Job(4, 2);  // 8 ranks
  st.set_state(FAILED);
  st.set_started_ms(1'000'000);
  st.mutable_failure()->set_rank(6);
  st.mutable_ranks(6)->set_state(agent::RANK_EXITED);
  st.mutable_ranks(6)->set_signal(11);  // crashed: named by the failure
  st.mutable_ranks(2)->set_state(agent::RANK_EXITED);
  st.mutable_ranks(2)->set_exit_code(3);
  st.mutable_ranks(4)->set_state(agent::RANK_EXITED);
  st.mutable_ranks(4)->set_signal(15);  // killed with the job: not trouble by itself
  st.add_stragglers()->set_rank(2);     // already listed
  st.add_stragglers()->set_rank(5);
  // Running: 0, 1, 3, 5, 7. Rank 7's newest record is 31 s older than the newest; rank
  // 1's 29 s (reports arrive late, not stalled); rank 0 has none.
  const int64_t now = 1'000'000 + 100'000;
  std::map<int, agent::RankProgress> progress;
  for (int r : {1, 3, 5, 7}) progress[r].set_time_ms(now);
  progress[1].set_time_ms(now - 29'000);
  progress[7].set_time_ms(now - 31'000);
  int total = 0;
  std::vector<RankTrouble> t = TroubleRanks(st, progress, 10, &total);
  std::vector<std::pair<int, std::string>> got;
  for (const RankTrouble& r : t) got.emplace_back(r.status.rank(), r.why);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{{6, "failed"},
                                                           {2, "ended with an error"},
                                                           {5, "straggler"},
                                                           {0, "stalled"},
                                                           {7, "stalled"}}));
  EXPECT_EQ(total, 5);
  EXPECT_EQ(t[0].host, "h3");
  t = TroubleRanks(st, progress, 2, &total);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(total, 5);  // counted beyond the list

  // Rank 0 has been silent only 29 s since the start: not yet stalled. No records at
  // all: nothing to compare with.
  st.set_started_ms(now - 29'000);
  t = TroubleRanks(st, progress, 10, &total);
  EXPECT_EQ(t.back().status.rank(), 7);
  EXPECT_EQ(TroubleRanks(st, {}, 10, &total).size(), 3u);
}

}  // namespace
}  // namespace coord::coordinator
