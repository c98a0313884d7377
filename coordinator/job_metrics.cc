// CollectJobMetrics (see job_metrics.h).
#include "coordinator/job_metrics.h"

#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "common/json_file.h"
#include "coordinator/job_state.h"

namespace coord::coordinator {
namespace {

using metrics::HistogramData;
using metrics::Labels;
using metrics::MetricsPage;

// Every state and kind, so a series exists (at 0) before its first job or failure.
constexpr JobState kStates[] = {PENDING, LAUNCHING, RUNNING, SUCCEEDED, FAILED, KILLED, RESTARTING};
constexpr FailureKind kKinds[] = {FAILURE_RANK_EXIT, FAILURE_NODE_LOST,  FAILURE_HANG,
                                  FAILURE_LAUNCH,    FAILURE_NODE_CHECK, FAILURE_COORDINATOR,
                                  FAILURE_STARTUP};

// A number from the rank's own progress record ("time_ms", "tokens_per_s"); NaN when
// the record is not JSON or lacks it. Records are the rank's text: never trusted.
double RecordNumber(const nlohmann::json& record, const char* key) {
  if (!record.is_object()) return std::nan("");
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : std::nan("");
}

void CollectClusterMetrics(const std::vector<JobSnapshot>& jobs, MetricsPage* page) {
  std::map<JobState, int> by_state;
  std::map<FailureKind, int> failures;
  std::map<FailureKind, HistogramData> detection, restart;
  for (FailureKind k : kKinds) {
    detection.emplace(k, HistogramData(metrics::LatencyBuckets()));
    restart.emplace(k, HistogramData(metrics::LatencyBuckets()));
  }
  double restarts = 0;
  for (const JobSnapshot& j : jobs) {
    ++by_state[j.status.state()];
    restarts += j.status.restarts();
    for (const Failure& f : j.status.failures()) {
      ++failures[f.kind()];
      auto d = detection.find(f.kind());
      if (d == detection.end()) continue;  // a kind this build does not know
      if (f.occurred_ms() > 0 && f.time_ms() >= f.occurred_ms()) {
        d->second.Observe((f.time_ms() - f.occurred_ms()) / 1000.0);
      }
      if (f.relaunched_ms() > 0 && f.relaunched_ms() >= f.time_ms()) {
        restart.at(f.kind()).Observe((f.relaunched_ms() - f.time_ms()) / 1000.0);
      }
    }
  }
  for (JobState s : kStates) {
    page->Gauge("coord_jobs", "Jobs coordd knows, by state.", {{"state", StateName(s)}},
                by_state[s]);
  }
  for (FailureKind k : kKinds) {
    page->Counter("coord_failures_total", "Job failures coordd decided, by kind (all jobs).",
                  {{"kind", FailureKindLabel(k)}}, failures[k]);
  }
  page->Counter("coord_restarts_total", "Restarts of a failed job's generation (all jobs).", {},
                restarts);
  for (FailureKind k : kKinds) {
    page->Histogram("coord_failure_detection_seconds",
                    "From a failure (rank exit, last heartbeat, timeout) to coordd's decision.",
                    {{"kind", FailureKindLabel(k)}}, detection.at(k));
  }
  for (FailureKind k : kKinds) {
    page->Histogram("coord_restart_seconds",
                    "From coordd's decision to every rank of the next generation running.",
                    {{"kind", FailureKindLabel(k)}}, restart.at(k));
  }
}

void CollectRunningJob(const JobSnapshot& j, int64_t now_ms, MetricsPage* page) {
  const JobStatus& st = j.status;
  const Labels job = {{"job_id", st.job_id()}};
  page->Gauge("coord_job_generation", "The job's current generation (0, then 1 per restart).", job,
              st.generation());
  page->Gauge("coord_job_world_size", "Ranks in the job's current generation.", job,
              st.world_size());
  page->Counter("coord_job_restarts_total", "Restarts of this job so far.", job, st.restarts());
  if (st.iteration() >= 0) {
    page->Gauge("coord_job_iteration", "The highest iteration any rank reported.", job,
                static_cast<double>(st.iteration()));
  }
  if (st.last_checkpoint_iteration() >= 0) {
    page->Gauge("coord_job_last_checkpoint_iteration",
                "The newest checkpoint's iteration, as the ranks report it.", job,
                static_cast<double>(st.last_checkpoint_iteration()));
  }
  if (st.last_progress_ms() > 0) {
    page->Gauge("coord_job_seconds_since_progress",
                "Seconds since coordd received the job's last progress record.", job,
                std::max<int64_t>(0, now_ms - st.last_progress_ms()) / 1000.0);
  }
  for (const auto& [rank, p] : j.progress) {
    // The shared parser bounds the nesting; a record that is not JSON gives no series.
    StatusOr<nlohmann::json> parsed = ParseJson(p.text(), "progress record");
    const nlohmann::json record = parsed.ok() ? std::move(*parsed) : nlohmann::json();
    const Labels rank_labels = {{"job_id", st.job_id()}, {"rank", std::to_string(rank)}};
    if (p.iteration() >= 0) {
      page->Gauge("coord_job_rank_iteration", "The iteration of a rank's last progress record.",
                  rank_labels, static_cast<double>(p.iteration()));
    }
    const double step_ms = RecordNumber(record, "time_ms");
    if (std::isfinite(step_ms) && step_ms >= 0) {
      page->Gauge("coord_job_rank_step_seconds",
                  "The duration of a rank's last reported iteration.", rank_labels,
                  step_ms / 1000.0);
    }
    if (rank != 0) continue;
    // Loss and throughput are the job's, as rank 0 sees them (Megatron logs rank 0's).
    if (!std::isnan(p.loss())) {
      page->Gauge("coord_job_loss", "The training loss of rank 0's last progress record.", job,
                  p.loss());
    }
    const double tokens = RecordNumber(record, "tokens_per_s");
    if (std::isfinite(tokens) && tokens >= 0) {
      page->Gauge("coord_job_tokens_per_second",
                  "Tokens trained per second over the whole job, from rank 0's last record.", job,
                  tokens);
    }
  }
}

}  // namespace

std::string FailureKindLabel(FailureKind kind) {
  std::string name = FailureKind_Name(kind);
  if (name.rfind("FAILURE_", 0) == 0) name = name.substr(8);
  if (name.empty()) name = "unknown";
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

void CollectJobMetrics(const std::vector<JobSnapshot>& jobs, int64_t now_ms, MetricsPage* page) {
  CollectClusterMetrics(jobs, page);
  for (const JobSnapshot& j : jobs) {
    if (!IsTerminal(j.status.state())) CollectRunningJob(j, now_ms, page);
  }
}

}  // namespace coord::coordinator
