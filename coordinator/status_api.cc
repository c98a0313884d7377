// The status page's JSON API (see status_api.h): renderers and routes. Numbers that are
// not known (NaN, -1 sentinels of the proto) become null, so the page never shows a
// made-up zero.
#include "coordinator/status_api.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/hostfile.h"
#include "coordinator/job_metrics.h"
#include "coordinator/job_state.h"
#include "coordinator/log_api.h"

namespace coord::coordinator {
namespace {

using nlohmann::json;

// "NODE_LAUNCHED" -> "launched", "RANK_RUNNING" -> "running".
std::string EnumLabel(std::string name, const std::string& prefix) {
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

json Number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json Count(int64_t v) { return v >= 0 ? json(v) : json(nullptr); }
json Millis(int64_t ms) { return ms > 0 ? json(ms) : json(nullptr); }
json Seconds(int64_t from_ms, int64_t to_ms) {
  return from_ms > 0 && to_ms >= from_ms ? json((to_ms - from_ms) / 1000.0) : json(nullptr);
}

// The job's record time (its end, or now while it lives) for ages.
int64_t AgeBase(const JobStatus& st, int64_t now_ms) {
  return st.ended_ms() > 0 ? st.ended_ms() : now_ms;
}

json SummaryJson(const JobSnapshot& j, int64_t now_ms) {
  const JobStatus& st = j.status;
  json stragglers = json::array();
  for (const Straggler& s : st.stragglers()) stragglers.push_back(s.rank());
  return {{"id", st.job_id()},
          {"name", j.name},
          {"state", StateName(st.state())},
          // A paged status holds some nodes only: its counts say how many in all.
          {"nodes", st.has_counts() ? st.counts().nodes() : st.nodes_size()},
          {"ranks", st.world_size()},
          {"generation", st.generation()},
          {"restarts", st.restarts()},
          {"max_restarts", st.max_restarts()},
          {"created_ms", Millis(st.created_ms())},
          {"started_ms", Millis(st.started_ms())},
          {"ended_ms", Millis(st.ended_ms())},
          {"age_s", Seconds(st.created_ms(), now_ms)},
          {"iteration", Count(st.iteration())},
          {"train_iters", st.train_iters() > 0 ? json(st.train_iters()) : json(nullptr)},
          {"loss", st.iteration() >= 0 ? Number(st.loss()) : json(nullptr)},
          {"tokens_per_s", st.tokens_per_s() > 0 ? json(st.tokens_per_s()) : json(nullptr)},
          {"stragglers", stragglers},
          {"message", st.message()}};
}

json FailureJson(const Failure& f) {
  return {{"kind", FailureKindLabel(f.kind())},
          {"host", f.host()},
          {"node_rank", f.node_rank()},
          {"rank", f.rank() >= 0 ? json(f.rank()) : json(nullptr)},
          {"exit_code", f.exit_code()},
          {"signal", f.signal()},
          {"message", f.message()},
          {"action", f.action()},
          {"occurred_ms", Millis(f.occurred_ms())},
          {"detected_ms", Millis(f.time_ms())},
          {"confirmed_gone_ms", Millis(f.confirmed_gone_ms())},
          {"relaunched_ms", Millis(f.relaunched_ms())},
          {"detection_s", Seconds(f.occurred_ms(), f.time_ms())},
          {"restart_s", Seconds(f.time_ms(), f.relaunched_ms())},
          {"stderr_tail", f.stderr_tail()}};
}

// The nodes x ranks grid: each node of the current generation with its ranks.
json GridJson(const JobSnapshot& j, int64_t now_ms) {
  const JobStatus& st = j.status;
  std::map<int, const Straggler*> stragglers;
  for (const Straggler& s : st.stragglers()) stragglers[s.rank()] = &s;
  std::map<int, const RankTiming*> timings;
  for (const RankTiming& t : st.rank_timings()) timings[t.rank()] = &t;
  json nodes = json::array();
  for (const NodeStatus& n : st.nodes()) {
    nodes.push_back({{"node_rank", n.node_rank()},
                     {"host", n.host()},
                     {"port", n.port()},
                     {"state", EnumLabel(NodeState_Name(n.state()), "NODE_")},
                     {"error", n.error()},
                     {"ranks", json::array()}});
  }
  for (const agent::RankStatus& r : st.ranks()) {
    json rank = {{"rank", r.rank()},
                 {"local_rank", r.local_rank()},
                 {"state", EnumLabel(agent::RankState_Name(r.state()), "RANK_")},
                 {"pid", r.pid() > 0 ? json(r.pid()) : json(nullptr)},
                 {"exit_code", nullptr},
                 {"signal", nullptr},
                 {"error", r.error()},
                 {"iteration", nullptr},
                 {"step_ms", nullptr},
                 {"progress_age_s", nullptr},
                 {"score", nullptr},
                 {"straggler", stragglers.count(r.rank()) > 0}};
    if (r.state() == agent::RANK_EXITED) {
      rank["exit_code"] = r.exit_code();
      rank["signal"] = r.signal();
    }
    auto p = j.progress.find(r.rank());
    if (p != j.progress.end()) {
      rank["iteration"] = Count(p->second.iteration());
      // The record's time is the agent's clock; ages across nodes assume synced clocks,
      // as coordctl status does.
      rank["progress_age_s"] = Seconds(p->second.time_ms(), AgeBase(st, now_ms));
    }
    auto t = timings.find(r.rank());
    if (t != timings.end()) {
      rank["step_ms"] = Number(t->second->step_ms());
      if (t->second->score() > 0) rank["score"] = t->second->score();
    }
    for (json& n : nodes) {
      if (n["node_rank"] == r.node_rank()) n["ranks"].push_back(std::move(rank));
    }
  }
  return nodes;
}

json CountsJson(const JobCounts& c) {
  json nodes = json::object();
  for (const NodeStateCount& n : c.node_states()) {
    nodes[EnumLabel(NodeState_Name(n.state()), "NODE_")] = n.count();
  }
  return {{"nodes", c.nodes()},
          {"ranks_running", c.ranks_running()},
          {"ranks_exited_ok", c.ranks_exited_ok()},
          {"ranks_exited_error", c.ranks_exited_error()},
          {"ranks_not_started", c.ranks_not_started()},
          {"node_states", std::move(nodes)}};
}

int RankRows(const JobCounts& c) {
  return c.ranks_running() + c.ranks_exited_ok() + c.ranks_exited_error() + c.ranks_not_started();
}

// The ranks worth a look anywhere in the job (job_view.h TroubleRanks), for a paged job.
json TroubleJson(const JobSnapshot& j, int64_t now_ms) {
  json ranks = json::array();
  for (const RankTrouble& t : j.trouble) {
    const agent::RankStatus& r = t.status;
    json rank = {{"rank", r.rank()},
                 {"why", t.why},
                 {"node_rank", r.node_rank()},
                 {"host", t.host},
                 {"state", EnumLabel(agent::RankState_Name(r.state()), "RANK_")},
                 {"exit_code", nullptr},
                 {"signal", nullptr},
                 {"error", r.error()},
                 {"iteration", nullptr},
                 {"progress_age_s", nullptr}};
    if (r.state() == agent::RANK_EXITED) {
      rank["exit_code"] = r.exit_code();
      rank["signal"] = r.signal();
    }
    auto p = j.progress.find(r.rank());
    if (p != j.progress.end()) {
      rank["iteration"] = Count(p->second.iteration());
      rank["progress_age_s"] = Seconds(p->second.time_ms(), AgeBase(j.status, now_ms));
    }
    ranks.push_back(std::move(rank));
  }
  return {{"total", j.trouble_total}, {"ranks", std::move(ranks)}};
}

json StateChangesJson(const JobSnapshot& j, const JobHistoryView& h) {
  json out = json::array();
  for (const StateChange& c : h.states) {
    out.push_back({{"t_ms", c.t_ms},
                   {"generation", c.generation},
                   {"from", c.from == JOB_STATE_UNKNOWN ? json(nullptr) : json(StateName(c.from))},
                   {"to", StateName(c.to)},
                   {"message", c.message}});
  }
  if (h.states.empty()) {
    // coordd restarted since (or the job is older than the history keeps): what the
    // journaled status still says.
    const JobStatus& st = j.status;
    out.push_back({{"t_ms", Millis(st.created_ms())},
                   {"generation", 0},
                   {"from", nullptr},
                   {"to", StateName(PENDING)},
                   {"message", "submitted"}});
    out.push_back({{"t_ms", Millis(st.ended_ms() > 0 ? st.ended_ms() : st.started_ms())},
                   {"generation", st.generation()},
                   {"from", nullptr},
                   {"to", StateName(st.state())},
                   {"message", st.message()}});
  }
  return out;
}

json PointsJson(const DownsampledSeries& s) {
  json points = json::array();
  for (const DownsampledSeries::Point& p : s.Points()) {
    json row = json::array({p.t_ms});
    for (size_t i = 0; i < s.width(); ++i) row.push_back(Number(p.v[i]));
    points.push_back(std::move(row));
  }
  return points;
}

// The part of a path after /api/jobs/ID/ranks/ that names a rank: digits only.
StatusOr<int> ParseRank(const std::string& text, int world_size) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("rank '" + text.substr(0, 32) + "' is not a rank number");
  }
  const int rank = std::stoi(text);
  if (rank >= world_size) {
    return NotFound("rank " + text + " is not in the job (world size " +
                    std::to_string(world_size) + ")");
  }
  return rank;
}

}  // namespace

// --- parameters ------------------------------------------------------------------------

namespace {

// ?limit=N&offset=R of either page: limit in 1..max_limit, offset >= 0.
template <typename Page>
StatusOr<Page> ParsePage(const QueryParams& params, int max_limit) {
  RETURN_IF_ERROR(OnlyKnown(params, {"limit", "offset"}));
  Page page;
  if (params.count("limit")) {
    ASSIGN_OR_RETURN(int64_t n, ParseCount("limit", QueryValue(params, "limit"), 1, max_limit));
    page.limit = static_cast<int>(n);
  }
  if (params.count("offset")) {
    ASSIGN_OR_RETURN(int64_t n, ParseCount("offset", QueryValue(params, "offset"), 0, 1 << 30));
    page.offset = static_cast<int>(n);
  }
  return page;
}

}  // namespace

StatusOr<RankPage> ParseRankPage(const QueryParams& params) {
  return ParsePage<RankPage>(params, kMaxPageRanks);
}

StatusOr<NodePage> ParseNodePage(const QueryParams& params) {
  return ParsePage<NodePage>(params, kMaxPageNodes);
}

// --- renderers -------------------------------------------------------------------------

json JobsListJson(const std::vector<JobSnapshot>& jobs, int64_t now_ms) {
  json list = json::array();
  // Newest first, as a person reads a queue.
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) list.push_back(SummaryJson(*it, now_ms));
  return {{"now_ms", now_ms}, {"jobs", std::move(list)}};
}

json JobJson(const JobSnapshot& j, const JobHistoryView& h, int64_t now_ms) {
  const JobStatus& st = j.status;
  json job = SummaryJson(j, now_ms);
  job["config_path"] = st.config_path();
  job["nproc_per_node"] = st.nproc_per_node();
  job["master"] = st.master_addr().empty()
                      ? json(nullptr)
                      : json(st.master_addr() + ":" + std::to_string(st.master_port()));
  job["step_ms"] = st.step_ms() > 0 ? json(st.step_ms()) : json(nullptr);
  job["seconds_since_progress"] = Seconds(st.last_progress_ms(), AgeBase(st, now_ms));
  job["malformed_progress_records"] = st.malformed_progress_records();
  json failures = json::array();
  for (const Failure& f : st.failures()) failures.push_back(FailureJson(f));
  json spares = json::array();
  for (const NodeStatus& n : st.spares()) {
    spares.push_back({{"host", n.host()},
                      {"port", n.port()},
                      {"state", EnumLabel(NodeState_Name(n.state()), "NODE_")},
                      {"error", n.error()}});
  }
  json stragglers = json::array();
  for (const Straggler& s : st.stragglers()) {
    stragglers.push_back({{"rank", s.rank()},
                          {"host", s.host()},
                          {"node_rank", s.node_rank()},
                          {"score", s.score()},
                          {"compute_ms", s.compute_ms()},
                          {"peers_compute_ms", s.peers_compute_ms()},
                          {"since_iteration", s.since_iteration()},
                          {"since_ms", Millis(s.since_ms())}});
  }
  json checkpoints = json::array();
  for (const CheckpointSeen& c : h.checkpoints) {
    checkpoints.push_back(
        {{"iteration", c.iteration}, {"t_ms", c.t_ms}, {"generation", c.generation}});
  }
  json out = {{"now_ms", now_ms},
              {"job", std::move(job)},
              {"states", StateChangesJson(j, h)},
              {"states_dropped", h.states_dropped},
              {"failures", std::move(failures)},
              {"nodes", GridJson(j, now_ms)},
              {"spares", std::move(spares)},
              {"stragglers", std::move(stragglers)},
              {"checkpoints",
               {{"last_iteration", Count(st.last_checkpoint_iteration())},
                {"seen", std::move(checkpoints)}}}};
  if (j.paged) {
    out["counts"] = CountsJson(st.counts());
    out["page"] = {{"offset", j.page_offset},
                   {"limit", j.page_limit},
                   {"ranks", st.ranks_size()},
                   {"total", RankRows(st.counts())}};
    out["trouble"] = TroubleJson(j, now_ms);
  }
  return out;
}

json ProgressJson(const JobHistoryView& h) {
  json columns = json::array({"t_ms"});
  for (const char* c : kProgressColumns) columns.push_back(c);
  return {{"columns", std::move(columns)},
          {"stride", h.progress.stride()},
          {"points", PointsJson(h.progress)}};
}

json ResourcesJson(const JobSnapshot& j, const JobHistoryView& h, const NodePage& page) {
  json columns = json::array({"t_ms"});
  for (const char* c : kUsageColumns) columns.push_back(c);
  std::map<std::string, int> node_ranks;  // target -> node rank, current generation
  for (const NodeStatus& s : j.status.nodes()) {
    HostEntry e;
    e.host = s.host();
    e.port = s.port();
    node_ranks[e.Target()] = s.node_rank();
  }
  json nodes = json::array();
  for (const NodeHistory& n : h.nodes) {
    auto it = node_ranks.find(n.target);
    const bool on_page = it == node_ranks.end()
                             ? page.offset == 0
                             : it->second >= page.offset && it->second - page.offset < page.limit;
    if (!on_page) continue;
    nodes.push_back({{"host", n.target},
                     {"node_rank", it == node_ranks.end() ? json(nullptr) : json(it->second)},
                     {"gpus", n.gpus},
                     {"stride", n.usage.stride()},
                     {"points", PointsJson(n.usage)}});
  }
  json page_json = {{"offset", page.offset},
                    {"limit", page.limit},
                    {"nodes", nodes.size()},
                    {"total", h.nodes.size()}};
  return {{"columns", std::move(columns)}, {"nodes", std::move(nodes)}, {"page", page_json}};
}

// --- HTTP ----------------------------------------------------------------------------

HttpResponse ErrorResponse(const Status& status) {
  int code = 500;
  switch (status.code()) {
    case StatusCode::kNotFound:
      code = 404;
      break;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      code = 400;
      break;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      code = 503;
      break;
    case StatusCode::kDeadlineExceeded:
      code = 504;
      break;
    default:
      break;
  }
  HttpResponse r = HttpResponse::Json(code, json{{"error", status.message()}}.dump() + "\n");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse JsonResponse(const json& body) {
  // Replace, not throw, on a rank's invalid UTF-8 (log lines, messages).
  HttpResponse r =
      HttpResponse::Json(200, body.dump(-1, ' ', false, json::error_handler_t::replace));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

void AddStatusApiRoutes(HttpServer* server, JobManager* jobs) {
  server->Get("/api/jobs/?", [jobs](const HttpRequest&) {
    return JsonResponse(JobsListJson(jobs->SnapshotSummaries(), WallMs()));
  });
  // ID: anything but a slash; unknown ones (and "..", "%2e%2e%2f...") are simply not jobs.
  server->Get("/api/jobs/([^/]+)", [jobs](const HttpRequest& req) {
    auto page = ParseRankPage(req.query);
    if (!page.ok()) return ErrorResponse(page.status());
    auto j = jobs->SnapshotJobPage(req.captures[0], page->limit, page->offset);
    if (!j.ok()) return ErrorResponse(j.status());
    const int total = RankRows(j->status.counts());
    if (page->offset > 0 && page->offset >= total) {
      return ErrorResponse(InvalidArgument("offset " + std::to_string(page->offset) +
                                           " is past the job's last rank (it has " +
                                           std::to_string(total) + " ranks)"));
    }
    return JsonResponse(JobJson(*j, jobs->history().View(req.captures[0]), WallMs()));
  });
  // The routes below need only the job's scalars: a page of one rank is copied, not all.
  server->Get("/api/jobs/([^/]+)/progress", [jobs](const HttpRequest& req) {
    auto j = jobs->SnapshotJobPage(req.captures[0], 1, 0);
    if (!j.ok()) return ErrorResponse(j.status());
    return JsonResponse(ProgressJson(jobs->history().View(req.captures[0])));
  });
  server->Get("/api/jobs/([^/]+)/resources", [jobs](const HttpRequest& req) {
    auto page = ParseNodePage(req.query);
    if (!page.ok()) return ErrorResponse(page.status());
    auto j = jobs->SnapshotJobNodes(req.captures[0]);  // every node's name, no ranks
    if (!j.ok()) return ErrorResponse(j.status());
    const int nodes = j->status.nodes_size();
    if (page->offset > 0 && page->offset >= nodes) {
      return ErrorResponse(InvalidArgument("offset " + std::to_string(page->offset) +
                                           " is past the job's last node (it has " +
                                           std::to_string(nodes) + " nodes)"));
    }
    return JsonResponse(ResourcesJson(*j, jobs->history().View(req.captures[0]), *page));
  });
  server->Get("/api/jobs/([^/]+)/ranks/([^/]+)/log", [jobs](const HttpRequest& req) {
    auto j = jobs->SnapshotJobPage(req.captures[0], 1, 0);
    if (!j.ok()) return ErrorResponse(j.status());
    auto rank = ParseRank(req.captures[1], j->status.world_size());
    if (!rank.ok()) return ErrorResponse(rank.status());
    auto query = ParseRankLogQuery(req.query);
    if (!query.ok()) return ErrorResponse(query.status());
    auto out = ReadRankLog(jobs, req.captures[0], *rank, *query);
    return out.ok() ? JsonResponse(*out) : ErrorResponse(out.status());
  });
  server->Get("/api/jobs/([^/]+)/logs/search", [jobs](const HttpRequest& req) {
    auto j = jobs->SnapshotJobPage(req.captures[0], 1, 0);
    if (!j.ok()) return ErrorResponse(j.status());
    auto query = ParseLogSearchQuery(req.query, j->status.world_size());
    if (!query.ok()) return ErrorResponse(query.status());
    auto out = SearchLogs(jobs, req.captures[0], *query);
    return out.ok() ? JsonResponse(*out) : ErrorResponse(out.status());
  });
  // Anything else under /api/ is a JSON 404 too (the page reads the error).
  server->Get("/api/.*", [](const HttpRequest& req) {
    return ErrorResponse(NotFound("no API route " + req.path.substr(0, 200)));
  });
}

}  // namespace coord::coordinator
