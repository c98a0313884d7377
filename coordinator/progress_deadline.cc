// The startup and hang deadlines (see progress_deadline.h).
#include "coordinator/progress_deadline.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "common/clock.h"

namespace coord::coordinator {

namespace {

std::string Seconds(int64_t ms) { return FormatSeconds(std::chrono::milliseconds(ms)); }

// "3", "3, 5" or "3, 5, 7 and 12 more": which ranks, without a line per rank of a big job.
std::string RankList(const std::vector<int>& ranks) {
  constexpr size_t kShown = 8;
  std::string out;
  for (size_t i = 0; i < ranks.size() && i < kShown; ++i) {
    out += (i == 0 ? "" : ", ") + std::to_string(ranks[i]);
  }
  if (ranks.size() > kShown) out += " and " + std::to_string(ranks.size() - kShown) + " more";
  return out;
}

}  // namespace

ProgressDeadline NextProgressDeadline(const JobPlan& plan, const ProgressSeen& seen,
                                      int64_t slack_ms) {
  ProgressDeadline d;
  if (!seen.starting.empty()) {
    // Only the startup deadline: before every rank has written a record, a silent rank
    // is loading, not hung, and a record from another rank says nothing about it.
    if (plan.startup_timeout_ms <= 0) return d;
    d.kind = FAILURE_STARTUP;
    d.expires_mono = seen.running_since_mono + plan.startup_timeout_ms;
  } else {
    if (plan.hang_timeout_ms <= 0) return d;
    d.kind = FAILURE_HANG;
    d.expires_mono =
        std::max(seen.last_progress_mono, seen.running_since_mono) + plan.hang_timeout_ms;
  }
  d.fires_mono = d.expires_mono + slack_ms;
  return d;
}

Failure ProgressFailure(const JobPlan& plan, const ProgressSeen& seen, const ProgressDeadline& d,
                        int64_t now_mono, int64_t now_wall_ms) {
  Failure f;
  f.set_rank(-1);
  f.set_kind(d.kind);
  f.set_occurred_ms(now_wall_ms - (now_mono - d.expires_mono));
  if (d.kind == FAILURE_STARTUP && !seen.starting.empty()) {
    const int rank = seen.starting.front();
    const int node = rank / std::max(1, plan.nproc_per_node);
    const HostEntry& host = plan.hosts[static_cast<size_t>(node)];
    f.set_rank(rank);
    f.set_host(host.host);
    f.set_node_rank(node);
    const int total = plan.world_size;
    const int silent = static_cast<int>(seen.starting.size());
    f.set_message("startup deadline: rank " + std::to_string(rank) + " on " + host.Target() +
                  " (node " + std::to_string(node) +
                  ") wrote no progress record within launch.startup_timeout_s " +
                  Seconds(plan.startup_timeout_ms) + " of the launch (" +
                  (silent == 1 ? std::string("every other rank has written one")
                               : std::to_string(silent) + " of " + std::to_string(total) +
                                     " ranks have not: " + RankList(seen.starting)) +
                  "); if start-up (rendezvous, data, checkpoint load) is this slow, raise "
                  "launch.startup_timeout_s");
    return f;
  }
  const int64_t since = std::max(seen.last_progress_mono, seen.running_since_mono);
  f.set_message("hang: no progress record from any rank for " + Seconds(now_mono - since) +
                " (launch.hang_timeout_s " + Seconds(plan.hang_timeout_ms) + ")");
  return f;
}

}  // namespace coord::coordinator
