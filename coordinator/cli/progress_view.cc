// Progress line, panel and timing section (progress_view.h).
#include "coordinator/cli/progress_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace coord::cli {

namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Cut(std::string s, size_t width) {
  if (width > 0 && s.size() > width) s.resize(width);
  return s;
}

std::string HostOf(const coordinator::JobStatus& job, int node_rank) {
  for (const auto& n : job.nodes()) {
    if (n.node_rank() == node_rank) return n.host();
  }
  return "node " + std::to_string(node_rank);
}

// The rank to name as slowest: the worst straggler, else the highest score (if any).
struct Slowest {
  int rank = -1;
  int node_rank = 0;
  double score = 0;
  bool straggler = false;
};
Slowest FindSlowest(const coordinator::JobStatus& job) {
  Slowest s;
  for (const auto& g : job.stragglers()) {
    if (g.score() > s.score) s = {g.rank(), g.node_rank(), g.score(), true};
  }
  if (s.straggler) return s;
  for (const auto& t : job.rank_timings()) {
    if (t.score() > s.score) s = {t.rank(), t.node_rank(), t.score(), false};
  }
  return s;
}

std::string Ms(double ms) { return ms >= 100 ? Fixed(ms, 0) : Fixed(ms, 1); }

}  // namespace

std::string FormatDuration(int64_t ms) {
  const int64_t s = std::max<int64_t>(0, (ms + 500) / 1000);
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string FormatCount(double v) {
  if (!std::isfinite(v) || v < 0) return "-";
  if (v < 1000) return Fixed(v, 0);
  if (v < 1e6) return Fixed(v / 1e3, v < 1e4 ? 2 : 1) + "k";
  if (v < 1e9) return Fixed(v / 1e6, v < 1e7 ? 2 : 1) + "M";
  return Fixed(v / 1e9, 2) + "G";
}

coordinator::GetJobRequest ProgressRequest(const std::string& job_id, int rows) {
  coordinator::GetJobRequest req;
  req.set_job_id(job_id);
  req.set_slowest(std::max(rows, 1));  // the line names the slowest rank
  return req;
}

std::string ProgressLine(const coordinator::JobStatus& job, size_t width) {
  std::string s = coordinator::JobState_Name(job.state());
  if (job.iteration() < 0) return Cut(s + " waiting for the first progress record", width);
  s += " iteration " + std::to_string(job.iteration());
  if (job.train_iters() > 0) {
    s += "/" + std::to_string(job.train_iters()) + " (" +
         std::to_string(100 * job.iteration() / job.train_iters()) + "%)";
    if (job.step_ms() > 0 && job.train_iters() >= job.iteration()) {
      const double left = static_cast<double>(job.train_iters() - job.iteration()) * job.step_ms();
      s += " | ETA " + FormatDuration(static_cast<int64_t>(left));
    }
  }
  if (std::isfinite(job.loss()) && job.loss() != 0) s += " | loss " + Fixed(job.loss(), 4);
  if (job.tokens_per_s() > 0) s += " | " + FormatCount(job.tokens_per_s()) + " tokens/s";
  if (job.step_ms() > 0) s += " | step " + Ms(job.step_ms()) + " ms";
  const Slowest slow = FindSlowest(job);
  if (slow.rank >= 0) {
    s += std::string(" | ") + (slow.straggler ? "straggler" : "slowest") + ": rank " +
         std::to_string(slow.rank) + " on " + HostOf(job, slow.node_rank) + " (" +
         Fixed(slow.score, 2) + "x)";
  }
  return Cut(s, width);
}

namespace {

// The ranks by score (slowest first): a header and at most max_rows rows.
std::vector<std::string> RankRows(const coordinator::JobStatus& job, int max_rows, size_t width) {
  std::vector<std::string> out;
  std::vector<coordinator::RankTiming> rows(job.rank_timings().begin(), job.rank_timings().end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.score() > b.score(); });
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-5s %-16s %5s %9s %9s %9s %7s %7s %6s", "RANK", "NODE", "STAGE",
                "STEP", "COMPUTE", "WAIT", "DATA", "OPTIM", "SCORE");
  out.push_back(Cut(buf, width));
  int shown = 0;
  for (const auto& t : rows) {
    if (shown++ >= max_rows) break;
    const bool named = std::any_of(job.stragglers().begin(), job.stragglers().end(),
                                   [&](const auto& g) { return g.rank() == t.rank(); });
    std::snprintf(buf, sizeof(buf), "%-5d %-16s %5d %9s %9s %9s %7s %7s %6s%s", t.rank(),
                  HostOf(job, t.node_rank()).substr(0, 16).c_str(), t.stage(),
                  Ms(t.step_ms()).c_str(), Ms(t.compute_ms()).c_str(), Ms(t.wait_ms()).c_str(),
                  Ms(t.data_ms()).c_str(), Ms(t.optimizer_ms()).c_str(),
                  t.score() > 0 ? Fixed(t.score(), 2).c_str() : "-", named ? "  straggler" : "");
    out.push_back(Cut(buf, width));
  }
  // A ProgressRequest reply holds the slowest rows only; counts says how many in all.
  const size_t all = job.has_counts() ? static_cast<size_t>(job.counts().rank_timings())
                                      : rows.size();
  if (all > static_cast<size_t>(max_rows)) {
    out.push_back("... " + std::to_string(all - static_cast<size_t>(max_rows)) + " more ranks");
  }
  return out;
}

}  // namespace

std::vector<std::string> ProgressPanel(const coordinator::JobStatus& job, int64_t now_ms,
                                       int max_rows, size_t width) {
  std::vector<std::string> out;
  out.push_back(Cut("job " + job.job_id() + "  generation " + std::to_string(job.generation()) +
                        "  " + std::to_string(job.world_size()) + " ranks on " +
                        std::to_string(job.has_counts() ? job.counts().nodes()
                                                        : job.nodes_size()) +
                        " nodes",
                    width));
  out.push_back(ProgressLine(job, width));
  std::string age = "last progress record: ";
  age += job.last_progress_ms() > 0 ? FormatDuration(now_ms - job.last_progress_ms()) + " ago"
                                     : "none yet";
  if (job.last_checkpoint_iteration() >= 0) {
    age += "  checkpoint: iteration " + std::to_string(job.last_checkpoint_iteration());
  }
  out.push_back(Cut(age, width));
  if (job.rank_timings_size() == 0) return out;
  out.push_back("");
  for (std::string& l : RankRows(job, max_rows, width)) out.push_back(std::move(l));
  return out;
}

void PrintTimingSummary(const coordinator::JobStatus& job, std::ostream& out) {
  if (job.tokens_per_s() > 0 || job.step_ms() > 0) {
    out << "speed:      ";
    if (job.tokens_per_s() > 0) out << FormatCount(job.tokens_per_s()) << " tokens/s, ";
    if (job.step_ms() > 0) out << Ms(job.step_ms()) << " ms per iteration";
    if (job.train_iters() > 0) {
      out << " (iteration " << job.iteration() << " of " << job.train_iters();
      if (job.step_ms() > 0 && job.train_iters() >= job.iteration()) {
        out << ", ETA "
            << FormatDuration(static_cast<int64_t>(
                   static_cast<double>(job.train_iters() - job.iteration()) * job.step_ms()));
      }
      out << ")";
    }
    out << "\n";
  }
  for (const auto& g : job.stragglers()) {
    out << "straggler:  rank " << g.rank() << " on " << g.host() << " (node " << g.node_rank()
        << "): compute " << Ms(g.compute_ms()) << " ms per iteration, its peers "
        << Ms(g.peers_compute_ms()) << " ms (" << Fixed(g.score(), 2) << "x) since iteration "
        << g.since_iteration() << "\n";
  }
  if (job.stragglers_size() == 0 && job.rank_timings_size() > 0) {
    out << "stragglers: none\n";
  }
  if (job.malformed_progress_records() > 0) {
    out << "malformed:  " << job.malformed_progress_records()
        << " progress records ignored (see the agents' logs)\n";
  }
}

void PrintTimingTable(const coordinator::JobStatus& job, std::ostream& out) {
  if (job.rank_timings_size() == 0) return;
  out << "\nTIMINGS (ms, median of each rank's last iterations; score = compute / its peers')\n";
  for (const std::string& line : RankRows(job, job.rank_timings_size(), 0)) out << line << "\n";
}

}  // namespace coord::cli
