// coordd's /metrics figures from job snapshots: jobs by state, failures and restarts
// counted over every job, detection and restart latencies from the failure records,
// and a running job's progress (iteration, loss, tokens/s, step time per rank,
// checkpoint, silence) from its ranks' records, bad records included.
#include "coordinator/job_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace coord::coordinator {
namespace {

Failure MakeFailure(FailureKind kind, int64_t occurred, int64_t decided, int64_t relaunched) {
  Failure f;
  f.set_kind(kind);
  f.set_occurred_ms(occurred);
  f.set_time_ms(decided);
  f.set_relaunched_ms(relaunched);
  return f;
}

agent::RankProgress Record(int rank, int64_t iteration, double loss, const std::string& text) {
  agent::RankProgress p;
  p.set_rank(rank);
  p.set_iteration(iteration);
  p.set_loss(loss);
  p.set_text(text);
  return p;
}

std::vector<JobSnapshot> Jobs() {
  std::vector<JobSnapshot> jobs(3);
  // An old job that failed twice and restarted once, then ended.
  jobs[0].status.set_job_id("old-1");
  jobs[0].status.set_state(FAILED);
  jobs[0].status.set_restarts(1);
  *jobs[0].status.add_failures() = MakeFailure(FAILURE_RANK_EXIT, 1000, 1300, 4300);
  *jobs[0].status.add_failures() = MakeFailure(FAILURE_NODE_LOST, 10000, 12000, 0);
  // A running job, restarted once after a hang, with progress records.
  JobStatus& run = jobs[1].status;
  run.set_job_id("tiny-2");
  run.set_state(RUNNING);
  run.set_generation(1);
  run.set_world_size(2);
  run.set_restarts(1);
  run.set_iteration(120);
  run.set_loss(3.5);
  run.set_last_checkpoint_iteration(100);
  run.set_last_progress_ms(50000);
  *run.add_failures() = MakeFailure(FAILURE_HANG, 20000, 20700, 21200);
  jobs[1].progress[0] =
      Record(0, 120, 3.25, R"({"iteration":120,"loss":3.25,"time_ms":250.5,"tokens_per_s":8192})");
  jobs[1].progress[1] = Record(1, 119, std::nan(""), "not json {");  // a rank's bad record
  // A succeeded job: counted by state, no per-job series.
  jobs[2].status.set_job_id("done-3");
  jobs[2].status.set_state(SUCCEEDED);
  jobs[2].status.set_iteration(30);
  return jobs;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(JobMetricsTest, ClusterCountersAndLatencies) {
  metrics::MetricsPage page;
  CollectJobMetrics(Jobs(), 52500, &page);
  const std::string t = page.Text();
  for (const char* line : {
           "# TYPE coord_jobs gauge\n",
           "coord_jobs{state=\"RUNNING\"} 1\n",
           "coord_jobs{state=\"FAILED\"} 1\n",
           "coord_jobs{state=\"SUCCEEDED\"} 1\n",
           "coord_jobs{state=\"PENDING\"} 0\n",
           "# TYPE coord_failures_total counter\n",
           "coord_failures_total{kind=\"rank_exit\"} 1\n",
           "coord_failures_total{kind=\"node_lost\"} 1\n",
           "coord_failures_total{kind=\"hang\"} 1\n",
           "coord_failures_total{kind=\"startup\"} 0\n",
           "coord_restarts_total 2\n",
           "# TYPE coord_failure_detection_seconds histogram\n",
           // rank exit: 0.3 s; node lost: 2 s; hang: 0.7 s
           "coord_failure_detection_seconds_bucket{kind=\"rank_exit\",le=\"0.25\"} 0\n",
           "coord_failure_detection_seconds_bucket{kind=\"rank_exit\",le=\"0.5\"} 1\n",
           "coord_failure_detection_seconds_sum{kind=\"node_lost\"} 2\n",
           "coord_failure_detection_seconds_bucket{kind=\"node_lost\",le=\"1\"} 0\n",
           "coord_failure_detection_seconds_bucket{kind=\"node_lost\",le=\"2.5\"} 1\n",
           "coord_failure_detection_seconds_count{kind=\"hang\"} 1\n",
           // restarts: 3 s after the rank exit, 0.5 s after the hang; none after node lost
           "coord_restart_seconds_sum{kind=\"rank_exit\"} 3\n",
           "coord_restart_seconds_sum{kind=\"hang\"} 0.5\n",
           "coord_restart_seconds_count{kind=\"node_lost\"} 0\n",
       }) {
    EXPECT_TRUE(Has(t, line)) << line << "\n" << t;
  }
}

TEST(JobMetricsTest, ARunningJobsProgress) {
  metrics::MetricsPage page;
  CollectJobMetrics(Jobs(), 52500, &page);
  const std::string t = page.Text();
  for (const char* line : {
           "coord_job_iteration{job_id=\"tiny-2\"} 120\n",
           "coord_job_loss{job_id=\"tiny-2\"} 3.25\n",  // rank 0's record
           "coord_job_tokens_per_second{job_id=\"tiny-2\"} 8192\n",
           "coord_job_last_checkpoint_iteration{job_id=\"tiny-2\"} 100\n",
           "coord_job_seconds_since_progress{job_id=\"tiny-2\"} 2.5\n",
           "coord_job_generation{job_id=\"tiny-2\"} 1\n",
           "coord_job_world_size{job_id=\"tiny-2\"} 2\n",
           "coord_job_restarts_total{job_id=\"tiny-2\"} 1\n",
           "coord_job_rank_step_seconds{job_id=\"tiny-2\",rank=\"0\"} 0.2505\n",
           "coord_job_rank_iteration{job_id=\"tiny-2\",rank=\"0\"} 120\n",
           "coord_job_rank_iteration{job_id=\"tiny-2\",rank=\"1\"} 119\n",
       }) {
    EXPECT_TRUE(Has(t, line)) << line << "\n" << t;
  }
  // Rank 1's record is not JSON: no step time for it, and nothing else breaks.
  EXPECT_FALSE(Has(t, "coord_job_rank_step_seconds{job_id=\"tiny-2\",rank=\"1\"}")) << t;
  // Ended jobs have no per-job series.
  EXPECT_FALSE(Has(t, "job_id=\"old-1\"")) << t;
  EXPECT_FALSE(Has(t, "job_id=\"done-3\"")) << t;
}

// A rank's record is its own text: a time out of double range, nesting without end,
// bytes that are not UTF-8 or a time that is not a number give no step time for that
// rank, and the page is still written (rank 0's good record still counts).
TEST(JobMetricsTest, HostileRecordsGiveNoSeriesAndBreakNothing) {
  const std::vector<std::string> texts = {
      R"({"iteration":5,"time_ms":1e400})",
      "{\"time_ms\":" + std::string(100000, '['),
      "{\"time_ms\":5,\"x\":\"\xff\"}",
      R"({"time_ms":"5"})",
      R"({"time_ms":[5]})",
  };
  std::vector<JobSnapshot> jobs = Jobs();
  for (size_t i = 0; i < texts.size(); ++i) {
    jobs[1].progress[static_cast<int>(i) + 1] = Record(static_cast<int>(i) + 1, 119, 1.0, texts[i]);
  }
  jobs[1].status.set_world_size(static_cast<int>(texts.size()) + 1);
  metrics::MetricsPage page;
  CollectJobMetrics(jobs, 52500, &page);
  const std::string t = page.Text();
  EXPECT_TRUE(Has(t, "coord_job_rank_step_seconds{job_id=\"tiny-2\",rank=\"0\"} 0.2505\n")) << t;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string rank = std::to_string(i + 1);
    EXPECT_FALSE(Has(t, "coord_job_rank_step_seconds{job_id=\"tiny-2\",rank=\"" + rank + "\"}"))
        << rank << "\n"
        << t;
    EXPECT_TRUE(Has(t, "coord_job_rank_iteration{job_id=\"tiny-2\",rank=\"" + rank + "\"} 119\n"))
        << rank << "\n"
        << t;
  }
}

TEST(JobMetricsTest, NoProgressYetMeansNoProgressSeries) {
  std::vector<JobSnapshot> jobs(1);
  jobs[0].status.set_job_id("new-1");
  jobs[0].status.set_state(LAUNCHING);
  jobs[0].status.set_iteration(-1);
  jobs[0].status.set_last_checkpoint_iteration(-1);
  metrics::MetricsPage page;
  CollectJobMetrics(jobs, 1000, &page);
  const std::string t = page.Text();
  EXPECT_TRUE(Has(t, "coord_jobs{state=\"LAUNCHING\"} 1\n")) << t;
  EXPECT_TRUE(Has(t, "coord_job_generation{job_id=\"new-1\"} 0\n")) << t;
  for (const char* absent :
       {"coord_job_iteration", "coord_job_loss", "coord_job_tokens", "coord_job_last_checkpoint",
        "coord_job_seconds_since_progress", "coord_job_rank_"}) {
    EXPECT_FALSE(Has(t, std::string(absent) + "{")) << absent << "\n" << t;
  }
}

TEST(JobMetricsTest, FailureKindLabels) {
  EXPECT_EQ(FailureKindLabel(FAILURE_RANK_EXIT), "rank_exit");
  EXPECT_EQ(FailureKindLabel(FAILURE_NODE_CHECK), "node_check");
  EXPECT_EQ(FailureKindLabel(FAILURE_COORDINATOR), "coordinator");
}

}  // namespace
}  // namespace coord::coordinator
