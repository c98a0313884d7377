// The status page's JSON API on coordd's HTTP endpoint (read-only; routes in
// AddStatusApiRoutes, documented in docs/observability.md "The web status page"):
//   /api/jobs                              the jobs list (like squeue)
//   /api/jobs/ID[?limit=N&offset=R]        one job: states, failures, counts, a page of the
//                                          nodes x ranks grid, the ranks in trouble
//   /api/jobs/ID/progress                  rank 0's iteration, loss, lr, tokens/s over time
//   /api/jobs/ID/resources[?limit=&offset=] some nodes' CPU, memory, network, GPU over time
//   /api/jobs/ID/ranks/R/log               one rank's log (log_api.h)
//   /api/jobs/ID/logs/search?q=            every rank's log searched (log_api.h)
// The same status model `coordctl status` prints (JobManager::Snapshot) rendered as JSON,
// plus the curves of JobHistory. The renderers are pure functions (unit-tested); the
// handlers run on the HTTP server's threads. Errors: unknown job or rank 404, a bad
// parameter 400, each with {"error": "..."}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/http_server.h"
#include "common/status.h"
#include "coordinator/job_history.h"
#include "coordinator/job_manager.h"
#include "coordinator/log_api.h"

namespace coord::coordinator {

// --- parameters ----------------------------------------------------------------------

// A job's page of ranks (?limit=N&offset=R): a job of 10,000 ranks is megabytes of JSON
// in full, so the page polls a page of it. The counts always cover the whole job.
inline constexpr int kDefaultPageRanks = 256;
inline constexpr int kMaxPageRanks = 1024;
struct RankPage {
  int limit = kDefaultPageRanks;  // 1..kMaxPageRanks
  int offset = 0;                 // the first rank; past the last one is a 400
};
// Unknown parameters and numbers out of range are InvalidArgument naming the parameter.
StatusOr<RankPage> ParseRankPage(const QueryParams& params);

// The resource curves of some nodes (?limit=N&offset=R: node ranks [R, R+N)): each node
// keeps up to 360 points of 10 columns (tens of KB of JSON), so 1,250 nodes would be tens of MB
// a poll. Nodes without a node rank (spares) come with the first page.
inline constexpr int kDefaultPageNodes = 32;
inline constexpr int kMaxPageNodes = 128;
struct NodePage {
  int limit = kDefaultPageNodes;  // 1..kMaxPageNodes
  int offset = 0;                 // a node rank; past the last one is a 400
};
StatusOr<NodePage> ParseNodePage(const QueryParams& params);

// --- renderers ---------------------------------------------------------------------

nlohmann::json JobsListJson(const std::vector<JobSnapshot>& jobs, int64_t now_ms);
// The job, its state changes, failures, grid, stragglers and checkpoints; for a paged
// snapshot (JobManager::SnapshotJobPage) also "counts" (the whole job), "page" {offset,
// limit, ranks (on this page), total} and "trouble" {total, ranks: [{rank, why, ...}]}.
nlohmann::json JobJson(const JobSnapshot& job, const JobHistoryView& history, int64_t now_ms);
// {"columns": [...], "stride": n, "points": [[t_ms, iteration, loss, lr, tokens/s], ...]}.
nlohmann::json ProgressJson(const JobHistoryView& history);
// {"columns": [...], "nodes": [{"host", "node_rank", "gpus", "stride", "points"}],
//  "page": {"offset", "limit", "nodes" (on this page), "total" (nodes with curves)}}.
nlohmann::json ResourcesJson(const JobSnapshot& job, const JobHistoryView& history,
                             const NodePage& page = NodePage{});

// --- HTTP ----------------------------------------------------------------------------

// A Status as the HTTP answer: NotFound 404, InvalidArgument/OutOfRange 400,
// ResourceExhausted/Unavailable 503, DeadlineExceeded 504, else 500; {"error": message}.
HttpResponse ErrorResponse(const Status& status);
// 200 with `body`, never cached (the page polls).
HttpResponse JsonResponse(const nlohmann::json& body);

// Adds the /api/ routes above to `server` (before its Start()).
void AddStatusApiRoutes(HttpServer* server, JobManager* jobs);

}  // namespace coord::coordinator
