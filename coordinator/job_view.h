// What a status reply carries of a job: the whole job counted (JobCounts), and its
// per-rank and per-node tables paged (GetJob's rank_limit/rank_offset) or left out
// (ListJobs), so a reply stays small however many ranks a job has (10,000 ranks are
// ~5 MB of JSON in full). Pure functions over JobStatus; JobManager calls them under
// its lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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

/// `job` with counts and, instead of rank rows, the progress view (GetJob's `slowest`):
/// the `n` rank_timings of highest score (ties: the lower rank), kept in rank order, and
/// the nodes of those ranks and of the stragglers. Sorting the result by score shows the
/// same first `n` rows as sorting the whole table.
void CopySlowest(JobStatus* job, int n, JobStatus* out);

/// A rank worth a look in a job too big to read rank by rank (the status page lists
/// them next to its page of ranks).
struct RankTrouble {
  std::string why;  // "failed", "ended with an error", "straggler", "stalled"
  std::string host;
  coord::agent::RankStatus status;
};

/// A running rank whose newest progress record is this much older than the job's
/// newest (or, without any record, the job's start) is "stalled".
inline constexpr int64_t kStalledMs = 30 * 1000;

/// The ranks in trouble, at most `max`, each once, in this order: the rank the failure
/// of a FAILED job names, ranks that exited with a non-zero code or an error (not a
/// signal: a kill signals every rank), the stragglers, and stalled ranks (kStalledMs).
/// `progress`: each rank's newest record. `*total`: how many in all.
std::vector<RankTrouble> TroubleRanks(const JobStatus& job,
                                      const std::map<int, coord::agent::RankProgress>& progress,
                                      int max, int* total);

}  // namespace coord::coordinator
