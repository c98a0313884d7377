// The status page's log views (status_api.h routes them): one rank's log, and a search
// across every rank's log. Both read through JobManager::StreamLogs (the agents'
// TailLogs, the path `coordctl logs` takes), so they can only ever show the files of the
// job's own ranks: no path is taken from the request. Everything is bounded: lines and
// bytes returned, bytes scanned, matches; a regex is RE2 (linear time, memory capped),
// and one search runs at a time (a second gets 503). Line numbers count from 1 in each
// rank's stdout and stderr separately, so a search hit opens at the same line in the log.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/status.h"
#include "coordinator/job_manager.h"

namespace coord::coordinator {

using QueryParams = std::multimap<std::string, std::string>;

// Query parameters, shared by the /api/ routes. A whole number `name` in lo..hi, else
// InvalidArgument naming it and the range.
StatusOr<int64_t> ParseCount(const std::string& name, const std::string& text, int64_t lo,
                             int64_t hi);
// InvalidArgument for a parameter not in `known` or given twice.
Status OnlyKnown(const QueryParams& params, const std::set<std::string>& known);
// The parameter's value, "" when absent.
std::string QueryValue(const QueryParams& params, const std::string& key);

// ?stream=stdout|stderr|both (both) &tail=N | &from=L&lines=N (tail=200) &max_bytes=B.
struct RankLogQuery {
  agent::LogStream stream = agent::LOG_BOTH;
  int64_t from_line = 0;           // 1-based; 0: the last `lines` lines of each stream (no numbers)
  int lines = 200;                 // 1..kMaxLogLines
  int64_t max_bytes = 256 * 1024;  // of text returned, 1..kMaxLogBytes
};
inline constexpr int kMaxLogLines = 5000;
inline constexpr int64_t kMaxLogBytes = 4 << 20;
// A range read stops after this much log (a line far into a huge log: ask a smaller from).
inline constexpr int64_t kMaxLogScanBytes = 256ll << 20;

// ?q=TEXT (required) &regex=0|1 &icase=0|1 &rank=R &stream=... &max_matches=N (100, at
// most 1000) &max_scan_bytes=B (64 MiB, at most 256 MiB).
struct LogSearchQuery {
  std::string pattern;  // 1..256 bytes
  bool regex = false;
  bool ignore_case = false;
  int rank = -1;  // -1: every rank
  agent::LogStream stream = agent::LOG_BOTH;
  int max_matches = 100;
  int64_t max_scan_bytes = 64ll << 20;
};
inline constexpr size_t kMaxPatternBytes = 256;
inline constexpr int kMaxSearchMatches = 1000;
inline constexpr size_t kMaxMatchTextBytes = 1000;  // a longer line is cut (and says so)

// Unknown parameters, malformed numbers and values out of range are InvalidArgument.
StatusOr<RankLogQuery> ParseRankLogQuery(const QueryParams& params);
StatusOr<LogSearchQuery> ParseLogSearchQuery(const QueryParams& params, int world_size);

// {"rank", "stream", "numbered", "lines": [{"n", "stream", "text"}], "truncated", "bytes"}
StatusOr<nlohmann::json> ReadRankLog(JobManager* jobs, const std::string& job_id, int rank,
                                     const RankLogQuery& query);
// {"matches": [{"rank", "stream", "line", "text", "cut"}], "scanned_bytes", "complete",
//  "truncated" (max_matches reached), "error" (a node that could not be read)}
StatusOr<nlohmann::json> SearchLogs(JobManager* jobs, const std::string& job_id,
                                    const LogSearchQuery& query);

}  // namespace coord::coordinator
