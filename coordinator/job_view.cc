// Counting and paging of a job's status tables (job_view.h).
#include "coordinator/job_view.h"

#include <algorithm>
#include <map>

namespace coord::coordinator {

namespace agent = coord::agent;

JobCounts CountJob(const JobStatus& job) {
  JobCounts c;
  c.set_nodes(job.nodes_size());
  c.set_rank_timings(job.rank_timings_size());
  for (const agent::RankStatus& r : job.ranks()) {
    switch (r.state()) {
      case agent::RANK_RUNNING:
        c.set_ranks_running(c.ranks_running() + 1);
        break;
      case agent::RANK_EXITED:
        if (r.exit_code() == 0 && r.signal() == 0 && r.error().empty()) {
          c.set_ranks_exited_ok(c.ranks_exited_ok() + 1);
        } else {
          c.set_ranks_exited_error(c.ranks_exited_error() + 1);
        }
        break;
      default:
        c.set_ranks_not_started(c.ranks_not_started() + 1);
    }
  }
  std::map<int, int> by_state;  // ordered: the enum's order
  for (const NodeStatus& n : job.nodes()) ++by_state[n.state()];
  for (const auto& [state, count] : by_state) {
    NodeStateCount* s = c.add_node_states();
    s->set_state(static_cast<NodeState>(state));
    s->set_count(count);
  }
  return c;
}

void CopyWithoutTables(JobStatus* job, JobStatus* out) {
  JobStatus tables;  // holds the four tables while the rest is copied
  tables.mutable_ranks()->Swap(job->mutable_ranks());
  tables.mutable_rank_timings()->Swap(job->mutable_rank_timings());
  tables.mutable_nodes()->Swap(job->mutable_nodes());
  tables.mutable_spares()->Swap(job->mutable_spares());
  *out = *job;
  job->mutable_ranks()->Swap(tables.mutable_ranks());
  job->mutable_rank_timings()->Swap(tables.mutable_rank_timings());
  job->mutable_nodes()->Swap(tables.mutable_nodes());
  job->mutable_spares()->Swap(tables.mutable_spares());
  *out->mutable_counts() = CountJob(*job);
}

void CopyPage(JobStatus* job, int limit, int offset, JobStatus* out) {
  if (limit <= 0) {
    *out = *job;
    *out->mutable_counts() = CountJob(*job);
    return;
  }
  CopyWithoutTables(job, out);
  const int first = std::clamp(offset, 0, job->ranks_size());
  const int end = first + std::min(limit, job->ranks_size() - first);
  std::vector<bool> page_node(static_cast<size_t>(job->nodes_size()), false);
  for (int i = first; i < end; ++i) {
    const agent::RankStatus& r = job->ranks(i);
    *out->add_ranks() = r;
    if (r.node_rank() >= 0 && r.node_rank() < job->nodes_size()) {
      page_node[static_cast<size_t>(r.node_rank())] = true;
    }
  }
  int troubled = 0;
  for (int n = 0; n < job->nodes_size(); ++n) {
    const NodeStatus& node = job->nodes(n);
    const bool trouble = node.state() == NODE_FAILED || node.state() == NODE_UNREACHABLE ||
                         node.state() == NODE_LOST;
    if (page_node[static_cast<size_t>(n)]) {
      *out->add_nodes() = node;
    } else if (trouble && troubled < limit) {
      *out->add_nodes() = node;
      ++troubled;
    }
  }
  for (const RankTiming& t : job->rank_timings()) {
    if (t.rank() >= first && t.rank() < end) *out->add_rank_timings() = t;
  }
  // Spares: the same bound (a pool of thousands of hosts is paged too).
  for (int i = 0; i < job->spares_size() && i < limit; ++i) *out->add_spares() = job->spares(i);
}

void CopySlowest(JobStatus* job, int n, JobStatus* out) {
  CopyWithoutTables(job, out);
  const auto& timings = job->rank_timings();
  std::vector<int> order(static_cast<size_t>(timings.size()));
  for (int i = 0; i < timings.size(); ++i) order[static_cast<size_t>(i)] = i;
  const size_t keep = std::min(order.size(), static_cast<size_t>(std::max(n, 0)));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&timings](int a, int b) {
                      const double sa = timings[a].score(), sb = timings[b].score();
                      return sa != sb ? sa > sb : a < b;
                    });
  order.resize(keep);
  std::sort(order.begin(), order.end());  // back in rank order, as the full table is
  std::vector<bool> wanted(static_cast<size_t>(job->nodes_size()), false);
  auto want = [&wanted](int node_rank) {
    if (node_rank >= 0 && node_rank < static_cast<int>(wanted.size())) {
      wanted[static_cast<size_t>(node_rank)] = true;
    }
  };
  for (int i : order) {
    *out->add_rank_timings() = timings[i];
    want(timings[i].node_rank());
  }
  for (const Straggler& s : job->stragglers()) want(s.node_rank());
  for (int i = 0; i < job->nodes_size(); ++i) {
    if (wanted[static_cast<size_t>(i)]) *out->add_nodes() = job->nodes(i);
  }
}

std::vector<RankTrouble> TroubleRanks(const JobStatus& job,
                                      const std::map<int, agent::RankProgress>& progress, int max,
                                      int* total) {
  std::vector<RankTrouble> out;
  std::vector<bool> seen(static_cast<size_t>(job.ranks_size()), false);
  *total = 0;
  auto add = [&](int rank, const char* why) {
    if (rank < 0 || rank >= job.ranks_size() || seen[static_cast<size_t>(rank)]) return;
    seen[static_cast<size_t>(rank)] = true;
    ++*total;
    if (static_cast<int>(out.size()) >= max) return;
    const agent::RankStatus& r = job.ranks(rank);
    std::string host;  // nodes are in node_rank order, as CopyPage relies on too
    if (r.node_rank() >= 0 && r.node_rank() < job.nodes_size()) {
      host = job.nodes(r.node_rank()).host();
    }
    out.push_back({why, std::move(host), r});
  };
  if (job.state() == FAILED && job.has_failure()) add(job.failure().rank(), "failed");
  for (const agent::RankStatus& r : job.ranks()) {
    if (r.state() == agent::RANK_EXITED && r.signal() == 0 &&
        (r.exit_code() != 0 || !r.error().empty())) {
      add(r.rank(), "ended with an error");
    }
  }
  for (const Straggler& s : job.stragglers()) add(s.rank(), "straggler");
  // Stalled: by the ranks' own clocks (synced, as the ages the page shows assume), a rank
  // silent for kStalledMs while another still reports. Iterations are no measure: records
  // arrive with the heartbeats, so fast ranks' known iterations differ by several.
  int64_t newest_ms = 0;
  for (const auto& [rank, p] : progress) newest_ms = std::max(newest_ms, p.time_ms());
  if (newest_ms > 0) {
    for (const agent::RankStatus& r : job.ranks()) {
      if (r.state() != agent::RANK_RUNNING) continue;
      auto p = progress.find(r.rank());
      const int64_t last_ms = p != progress.end() ? p->second.time_ms() : job.started_ms();
      if (last_ms > 0 && newest_ms - last_ms > kStalledMs) add(r.rank(), "stalled");
    }
  }
  return out;
}

}  // namespace coord::coordinator
