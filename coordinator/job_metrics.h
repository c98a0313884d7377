// coordd's job metrics for /metrics, computed at scrape time from JobManager::Snapshot
// (no counters kept on the side: the journal already holds every failure, so the
// figures survive a coordd restart and can never drift from `coordctl status`).
//   cluster  coord_jobs{state}, coord_failures_total{kind}, coord_restarts_total,
//            coord_failure_detection_seconds{kind}, coord_restart_seconds{kind}
//   per job  (not ended) coord_job_iteration, coord_job_loss, coord_job_tokens_per_second,
//            coord_job_last_checkpoint_iteration, coord_job_seconds_since_progress,
//            coord_job_generation, coord_job_world_size, coord_job_restarts_total;
//            per rank coord_job_rank_step_seconds, coord_job_rank_iteration
// Labels: job_id (not "job": Prometheus gives every target a job label), rank, kind
// ("rank_exit", "node_lost", "hang", ...), state.
// A pure function of its input, so it is unit-tested without a cluster.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "coordinator/job_manager.h"

namespace coord::coordinator {

// "rank_exit" for FAILURE_RANK_EXIT, ... (FailureKind without its prefix, lower case).
std::string FailureKindLabel(FailureKind kind);

// now_ms: the wall clock (seconds since progress are measured against it).
void CollectJobMetrics(const std::vector<JobSnapshot>& jobs, int64_t now_ms,
                       metrics::MetricsPage* page);

}  // namespace coord::coordinator
