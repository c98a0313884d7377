// What a status reply carries of a job: the whole job counted (JobCounts), and its
// per-rank and per-node tables paged (GetJob's rank_limit/rank_offset) or left out
// (ListJobs), so a reply stays small however many ranks a job has (10,000 ranks are
// ~5 MB of JSON in full). Pure functions over JobStatus; JobManager calls them under
// its lock.
#pragma once

#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// Counts the job's ranks by outcome and its active nodes by state.
JobCounts CountJob(const JobStatus& job);

/// `job` with counts, without ranks, rank_timings, nodes and spares (ListJobs). The
/// tables are moved out of `job` for the copy and back, so nothing of them is copied.
void CopyWithoutTables(JobStatus* job, JobStatus* out);

/// `job` with counts and, for limit > 0, only ranks [offset, offset + limit), their
/// timings, their nodes and the nodes in trouble (FAILED, UNREACHABLE, LOST; at most
/// `limit`), in node order. limit <= 0: every table in full.
void CopyPage(JobStatus* job, int limit, int offset, JobStatus* out);

}  // namespace coord::coordinator
