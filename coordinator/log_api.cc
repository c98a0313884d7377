// The status page's log views (see log_api.h).
#include "coordinator/log_api.h"

#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

namespace coord::coordinator {

// --- query parameters (log_api.h) -------------------------------------------------------

StatusOr<int64_t> ParseCount(const std::string& name, const std::string& text, int64_t lo,
                             int64_t hi) {
  const std::string range =
      name + " must be a number in " + std::to_string(lo) + ".." + std::to_string(hi);
  if (text.empty() || text.size() > 12 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument(range + ", not '" + text.substr(0, 32) + "'");
  }
  const int64_t v = std::stoll(text);
  if (v < lo || v > hi) return InvalidArgument(range + ", not " + text);
  return v;
}

Status OnlyKnown(const QueryParams& params, const std::set<std::string>& known) {
  for (const auto& [key, value] : params) {
    if (known.count(key) == 0)
      return InvalidArgument("unknown parameter '" + key.substr(0, 32) + "'");
    if (params.count(key) > 1) return InvalidArgument("parameter '" + key + "' given twice");
  }
  return Status::Ok();
}

std::string QueryValue(const QueryParams& params, const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

namespace {

using nlohmann::json;

// One search at a time, coordd-wide: a search reads every rank's log from every node.
std::atomic<bool> g_search_running{false};

StatusOr<bool> ParseFlag(const std::string& name, const std::string& text) {
  if (text == "1" || text == "true") return true;
  if (text == "0" || text == "false" || text.empty()) return false;
  return InvalidArgument(name + " must be 0 or 1");
}

StatusOr<agent::LogStream> ParseStream(const std::string& text) {
  if (text == "both") return agent::LOG_BOTH;
  if (text == "stdout") return agent::LOG_STDOUT;
  if (text == "stderr") return agent::LOG_STDERR;
  return InvalidArgument("stream must be stdout, stderr or both, not '" + text.substr(0, 32) + "'");
}

const char* StreamName(agent::LogStream s) {
  return s == agent::LOG_STDOUT ? "stdout" : s == agent::LOG_STDERR ? "stderr" : "both";
}

// Line numbers per (rank, stream), as the agents send each file's lines in order.
class LineCounter {
 public:
  int64_t Next(int rank, agent::LogStream stream) { return ++lines_[{rank, stream}]; }

 private:
  std::map<std::pair<int, int>, int64_t> lines_;
};

// A clean stop of ours is not an error; an agent's is (unless we got what we needed).
bool StoppedByUs(const Status& st, bool stopped) {
  return st.ok() || (stopped && st.code() == StatusCode::kCancelled);
}

}  // namespace

// --- parameters ------------------------------------------------------------------------

StatusOr<RankLogQuery> ParseRankLogQuery(const QueryParams& params) {
  RETURN_IF_ERROR(OnlyKnown(params, {"stream", "tail", "from", "lines", "max_bytes"}));
  RankLogQuery q;
  if (params.count("stream")) {
    ASSIGN_OR_RETURN(q.stream, ParseStream(QueryValue(params, "stream")));
  }
  if (params.count("tail") && params.count("from")) {
    return InvalidArgument("tail and from cannot both be given");
  }
  if (params.count("tail") && params.count("lines")) {
    return InvalidArgument("tail=N already says how many lines");
  }
  if (params.count("tail")) {
    ASSIGN_OR_RETURN(int64_t n, ParseCount("tail", QueryValue(params, "tail"), 1, kMaxLogLines));
    q.lines = static_cast<int>(n);
  }
  if (params.count("from")) {
    ASSIGN_OR_RETURN(q.from_line,
                     ParseCount("from", QueryValue(params, "from"), 1, int64_t{1} << 40));
  }
  if (params.count("lines")) {
    if (q.from_line == 0) return InvalidArgument("lines=N goes with from=L (or use tail=N)");
    ASSIGN_OR_RETURN(int64_t n, ParseCount("lines", QueryValue(params, "lines"), 1, kMaxLogLines));
    q.lines = static_cast<int>(n);
  }
  if (params.count("max_bytes")) {
    ASSIGN_OR_RETURN(q.max_bytes,
                     ParseCount("max_bytes", QueryValue(params, "max_bytes"), 1, kMaxLogBytes));
  }
  return q;
}

StatusOr<LogSearchQuery> ParseLogSearchQuery(const QueryParams& params, int world_size) {
  RETURN_IF_ERROR(OnlyKnown(
      params, {"q", "regex", "icase", "rank", "stream", "max_matches", "max_scan_bytes"}));
  LogSearchQuery q;
  q.pattern = QueryValue(params, "q");
  if (q.pattern.empty()) return InvalidArgument("q (the text to search for) is required");
  if (q.pattern.size() > kMaxPatternBytes) {
    return InvalidArgument("q is longer than " + std::to_string(kMaxPatternBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(q.regex, ParseFlag("regex", QueryValue(params, "regex")));
  ASSIGN_OR_RETURN(q.ignore_case, ParseFlag("icase", QueryValue(params, "icase")));
  if (params.count("rank")) {
    ASSIGN_OR_RETURN(int64_t r, ParseCount("rank", QueryValue(params, "rank"), 0, 1 << 24));
    if (r >= world_size) {
      return NotFound("rank " + std::to_string(r) + " is not in the job (world size " +
                      std::to_string(world_size) + ")");
    }
    q.rank = static_cast<int>(r);
  }
  if (params.count("stream")) {
    ASSIGN_OR_RETURN(q.stream, ParseStream(QueryValue(params, "stream")));
  }
  if (params.count("max_matches")) {
    ASSIGN_OR_RETURN(int64_t n, ParseCount("max_matches", QueryValue(params, "max_matches"), 1,
                                           kMaxSearchMatches));
    q.max_matches = static_cast<int>(n);
  }
  if (params.count("max_scan_bytes")) {
    ASSIGN_OR_RETURN(
        q.max_scan_bytes,
        ParseCount("max_scan_bytes", QueryValue(params, "max_scan_bytes"), 1, kMaxLogScanBytes));
  }
  return q;
}

// --- one rank's log ----------------------------------------------------------------------

StatusOr<json> ReadRankLog(JobManager* jobs, const std::string& job_id, int rank,
                           const RankLogQuery& q) {
  StreamLogsRequest req;
  req.set_job_id(job_id);
  req.set_rank(rank);
  req.set_stream(q.stream);
  req.set_follow(false);
  const bool tail = q.from_line == 0;
  req.set_tail_lines(tail ? q.lines : 0);  // a range counts from each file's first line
  const int streams = q.stream == agent::LOG_BOTH ? 2 : 1;
  const int64_t last = q.from_line + q.lines - 1;

  json lines = json::array();
  LineCounter counter;
  int64_t bytes = 0, scanned = 0;
  bool truncated = false, stopped = false;
  std::set<int> streams_done;
  Status st = jobs->StreamLogs(
      req,
      [&](const LogBatch& batch) {
        for (const LogLine& l : batch.lines()) {
          const int64_t n = counter.Next(l.rank(), l.stream());
          scanned += static_cast<int64_t>(l.text().size()) + 1;
          if (!tail && n > last) streams_done.insert(l.stream());
          const bool wanted = tail || (n >= q.from_line && n <= last);
          if (wanted) {
            if (bytes + static_cast<int64_t>(l.text().size()) > q.max_bytes) {
              truncated = true;
            } else {
              bytes += static_cast<int64_t>(l.text().size());
              lines.push_back({{"n", tail ? json(nullptr) : json(n)},
                               {"stream", StreamName(l.stream())},
                               {"text", l.text()}});
            }
          }
          if (truncated || static_cast<int>(streams_done.size()) >= streams ||
              scanned > kMaxLogScanBytes) {
            truncated = truncated || scanned > kMaxLogScanBytes;
            stopped = true;
            return false;
          }
        }
        return true;
      },
      nullptr);
  if (!StoppedByUs(st, stopped)) return st;
  return json{{"rank", rank},
              {"stream", StreamName(q.stream)},
              {"numbered", !tail},
              {"from", tail ? json(nullptr) : json(q.from_line)},
              {"lines", std::move(lines)},
              {"bytes", bytes},
              {"truncated", truncated}};
}

// --- search ------------------------------------------------------------------------------

StatusOr<json> SearchLogs(JobManager* jobs, const std::string& job_id, const LogSearchQuery& q) {
  std::unique_ptr<RE2> re;
  std::string needle = q.pattern;
  if (q.regex) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_case_sensitive(!q.ignore_case);
    o.set_max_mem(8 << 20);  // the compiled program's memory; a bigger one fails to compile
    re = std::make_unique<RE2>(q.pattern, o);
    if (!re->ok()) return InvalidArgument("regex: " + re->error());
  } else if (q.ignore_case) {
    for (char& c : needle) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  bool expected = false;
  if (!g_search_running.compare_exchange_strong(expected, true)) {
    return Unavailable("another log search is running; try again in a moment");
  }
  struct Release {
    ~Release() { g_search_running = false; }
  } release;

  StreamLogsRequest req;
  req.set_job_id(job_id);
  req.set_rank(q.rank);
  req.set_stream(q.stream);
  req.set_follow(false);
  req.set_tail_lines(0);
  std::vector<std::tuple<int, int, int64_t, std::string, bool>> found;  // rank, stream, line
  LineCounter counter;
  int64_t scanned = 0;
  bool truncated = false, complete = true, stopped = false;
  std::string lower;
  Status st = jobs->StreamLogs(
      req,
      [&](const LogBatch& batch) {
        for (const LogLine& l : batch.lines()) {
          const int64_t n = counter.Next(l.rank(), l.stream());
          scanned += static_cast<int64_t>(l.text().size()) + 1;
          bool hit;
          if (re) {
            hit = RE2::PartialMatch(l.text(), *re);
          } else if (q.ignore_case) {
            lower = l.text();
            for (char& c : lower)
              c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            hit = lower.find(needle) != std::string::npos;
          } else {
            hit = l.text().find(needle) != std::string::npos;
          }
          if (hit) {
            const bool cut = l.text().size() > kMaxMatchTextBytes;
            found.emplace_back(l.rank(), l.stream(), n, l.text().substr(0, kMaxMatchTextBytes),
                               cut);
          }
          if (static_cast<int>(found.size()) >= q.max_matches) truncated = true;
          if (scanned >= q.max_scan_bytes) complete = false;
          if (truncated || !complete) {
            stopped = true;
            return false;
          }
        }
        return true;
      },
      nullptr);
  json out = {
      {"scanned_bytes", scanned}, {"complete", complete && !truncated}, {"truncated", truncated}};
  if (!StoppedByUs(st, stopped)) {
    if (found.empty() && scanned == 0) return st;
    out["error"] = st.message();  // some nodes answered: what they had, and why not all
    out["complete"] = false;
  }
  std::sort(found.begin(), found.end());
  json matches = json::array();
  for (const auto& [rank, stream, line, text, cut] : found) {
    matches.push_back({{"rank", rank},
                       {"stream", StreamName(static_cast<agent::LogStream>(stream))},
                       {"line", line},
                       {"text", text},
                       {"cut", cut}});
  }
  out["matches"] = std::move(matches);
  return out;
}

}  // namespace coord::coordinator
