// coordctl's progress rendering (coordinator/cli/progress_view.h) as pure functions:
// the one line at each stage of a job (no record yet, running, with a straggler, with
// only scores), its width limit, the panel's rows slowest first, the status text's
// timing lines, and the duration and count formats.
#include "coordinator/cli/progress_view.h"

#include <gtest/gtest.h>

#include <sstream>

#include "coordinator/job_view.h"

namespace coord::cli {
namespace {

coordinator::JobStatus Running() {
  coordinator::JobStatus j;
  j.set_job_id("gpt-1a2b3c");
  j.set_state(coordinator::RUNNING);
  j.set_world_size(4);
  j.set_iteration(-1);
  j.set_last_checkpoint_iteration(-1);
  for (int n = 0; n < 2; ++n) {
    coordinator::NodeStatus* node = j.add_nodes();
    node->set_node_rank(n);
    node->set_host("127.0.0." + std::to_string(n + 2));
  }
  return j;
}

void AddTiming(coordinator::JobStatus* j, int rank, double compute, double score) {
  coordinator::RankTiming* t = j->add_rank_timings();
  t->set_rank(rank);
  t->set_node_rank(rank / 2);
  t->set_step_ms(410);
  t->set_compute_ms(compute);
  t->set_wait_ms(410 - compute);
  t->set_data_ms(0.25);
  t->set_optimizer_ms(9);
  t->set_score(score);
  t->set_samples(10);
}

TEST(ProgressViewTest, TheLineAtEachStageOfAJob) {
  coordinator::JobStatus j = Running();
  EXPECT_EQ(ProgressLine(j), "RUNNING waiting for the first progress record");
  j.set_iteration(120);
  EXPECT_EQ(ProgressLine(j), "RUNNING iteration 120");  // a program that says no more
  j.set_train_iters(500);
  j.set_loss(3.21449);
  j.set_tokens_per_s(2560);
  j.set_step_ms(410);
  EXPECT_EQ(ProgressLine(j),
            "RUNNING iteration 120/500 (24%) | ETA 2m36s | loss 3.2145 | 2.56k tokens/s | "
            "step 410 ms");
  AddTiming(&j, 0, 250, 1.0);
  AddTiming(&j, 1, 255, 1.02);
  EXPECT_EQ(ProgressLine(j),
            "RUNNING iteration 120/500 (24%) | ETA 2m36s | loss 3.2145 | 2.56k tokens/s | "
            "step 410 ms | slowest: rank 1 on 127.0.0.2 (1.02x)");
  AddTiming(&j, 3, 380, 1.52);
  coordinator::Straggler* g = j.add_stragglers();
  g->set_rank(3);
  g->set_node_rank(1);
  g->set_host("127.0.0.3");
  g->set_score(1.52);
  EXPECT_EQ(ProgressLine(j),
            "RUNNING iteration 120/500 (24%) | ETA 2m36s | loss 3.2145 | 2.56k tokens/s | "
            "step 410 ms | straggler: rank 3 on 127.0.0.3 (1.52x)");
  EXPECT_EQ(ProgressLine(j, 30), "RUNNING iteration 120/500 (24%");
  j.set_state(coordinator::SUCCEEDED);
  j.set_iteration(500);
  EXPECT_EQ(ProgressLine(j).substr(0, 54),
            "SUCCEEDED iteration 500/500 (100%) | ETA 0s | loss 3.2");
}

TEST(ProgressViewTest, ThePanelListsTheSlowestRanksFirst) {
  coordinator::JobStatus j = Running();
  j.set_iteration(120);
  j.set_train_iters(500);
  j.set_step_ms(410);
  j.set_last_progress_ms(1'000'000);
  j.set_last_checkpoint_iteration(100);
  AddTiming(&j, 0, 250, 1.0);
  AddTiming(&j, 1, 255, 1.02);
  AddTiming(&j, 2, 245, 0.98);
  AddTiming(&j, 3, 380, 1.52);
  j.add_stragglers()->set_rank(3);
  const std::vector<std::string> p = ProgressPanel(j, 1'002'400, 2);
  ASSERT_EQ(p.size(), 8u);
  EXPECT_EQ(p[0], "job gpt-1a2b3c  generation 0  4 ranks on 2 nodes");
  EXPECT_EQ(p[1].substr(0, 31), "RUNNING iteration 120/500 (24%)");
  EXPECT_EQ(p[2], "last progress record: 2s ago  checkpoint: iteration 100");
  EXPECT_EQ(p[3], "");
  EXPECT_EQ(p[4],
            "RANK  NODE             STAGE      STEP   COMPUTE      WAIT    DATA   OPTIM  SCORE");
  EXPECT_EQ(p[5],
            "3     127.0.0.3            0       410       380      30.0     0.2     9.0   1.52  "
            "straggler");
  EXPECT_EQ(p[6].substr(0, 6), "1     ");
  EXPECT_EQ(p[7], "... 2 more ranks");
  for (const std::string& line : ProgressPanel(j, 1'002'400, 10, 40)) EXPECT_LE(line.size(), 40u);
}

// What a refresh asks coordd for (ProgressRequest) shows the same line and panel as
// the whole status did, on a job of 1,000 nodes x 8 ranks with ties and a straggler.
TEST(ProgressViewTest, TheSlowestViewShowsWhatTheFullStatusShows) {
  coordinator::JobStatus j;
  j.set_job_id("big");
  j.set_state(coordinator::RUNNING);
  j.set_world_size(8000);
  j.set_iteration(40);
  j.set_last_progress_ms(1'000'000);
  j.set_last_checkpoint_iteration(-1);
  for (int n = 0; n < 1000; ++n) {
    coordinator::NodeStatus* node = j.add_nodes();
    node->set_node_rank(n);
    node->set_host("node" + std::to_string(n));
    for (int l = 0; l < 8; ++l) {
      const int rank = n * 8 + l;
      j.add_ranks()->set_rank(rank);
      AddTiming(&j, rank, 250, 1.0 + (rank % 97 == 0 ? 0.3 : 0) + (rank % 7) * 0.01);
      j.mutable_rank_timings(rank)->set_node_rank(n);
    }
  }
  coordinator::Straggler* g = j.add_stragglers();
  g->set_rank(7001);
  g->set_node_rank(875);
  g->set_score(1.6);
  for (const int rows : {1, 4, 20}) {
    const coordinator::GetJobRequest req = ProgressRequest("big", rows);
    EXPECT_EQ(req.job_id(), "big");
    EXPECT_EQ(req.rank_limit(), 0);
    coordinator::JobStatus full = j, view;
    coordinator::CopySlowest(&full, req.slowest(), &view);
    EXPECT_EQ(view.ranks_size(), 0);
    EXPECT_LT(view.ByteSizeLong() * 50, j.ByteSizeLong()) << rows << " rows";
    EXPECT_EQ(ProgressLine(view, 0), ProgressLine(j, 0));
    EXPECT_EQ(ProgressPanel(view, 1'002'000, rows, 120), ProgressPanel(j, 1'002'000, rows, 120))
        << rows << " rows";
  }
  EXPECT_NE(ProgressLine(j).find("straggler: rank 7001 on node875"), std::string::npos);
}

TEST(ProgressViewTest, TheStatusTextsTimingLines) {
  coordinator::JobStatus j = Running();
  std::ostringstream none;
  PrintTimingSummary(j, none);
  PrintTimingTable(j, none);
  EXPECT_EQ(none.str(), "");  // a job without timings prints nothing extra

  j.set_iteration(120);
  j.set_train_iters(500);
  j.set_tokens_per_s(2560);
  j.set_step_ms(410);
  j.set_malformed_progress_records(3);
  AddTiming(&j, 0, 250, 1.0);
  AddTiming(&j, 3, 380, 1.52);
  coordinator::Straggler* g = j.add_stragglers();
  g->set_rank(3);
  g->set_node_rank(1);
  g->set_host("127.0.0.3");
  g->set_score(1.52);
  g->set_compute_ms(380);
  g->set_peers_compute_ms(250);
  g->set_since_iteration(35);
  std::ostringstream out;
  PrintTimingSummary(j, out);
  EXPECT_EQ(out.str(),
            "speed:      2.56k tokens/s, 410 ms per iteration (iteration 120 of 500, ETA 2m36s)\n"
            "straggler:  rank 3 on 127.0.0.3 (node 1): compute 380 ms per iteration, its peers "
            "250 ms (1.52x) since iteration 35\n"
            "malformed:  3 progress records ignored (see the agents' logs)\n");
  std::ostringstream table;
  PrintTimingTable(j, table);
  EXPECT_NE(table.str().find("\nTIMINGS (ms"), std::string::npos);
  EXPECT_NE(table.str().find("\n3     127.0.0.3"), std::string::npos) << table.str();
}

TEST(ProgressViewTest, DurationsAndCounts) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(44'600), "45s");
  EXPECT_EQ(FormatDuration(156'000), "2m36s");
  EXPECT_EQ(FormatDuration(3'720'000), "1h02m");
  EXPECT_EQ(FormatDuration(273'600'000), "3d04h");
  EXPECT_EQ(FormatDuration(-5), "0s");
  EXPECT_EQ(FormatCount(512), "512");
  EXPECT_EQ(FormatCount(2560), "2.56k");
  EXPECT_EQ(FormatCount(45'100), "45.1k");
  EXPECT_EQ(FormatCount(1'200'000), "1.20M");
  EXPECT_EQ(FormatCount(-1), "-");
}

}  // namespace
}  // namespace coord::cli
