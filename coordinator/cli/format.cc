// Text formatting for coordctl (tables and summaries).
#include "coordinator/cli/format.h"
#include "coordinator/cli/progress_view.h"
#include "coordinator/node_state.h"

#include <csignal>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace coord::cli {
namespace {

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  time_t s = static_cast<time_t>(ms / 1000);
  struct tm tm;
  localtime_r(&s, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string RankOutcome(const agent::RankStatus& r) {
  if (!r.error().empty()) return "error: " + r.error();
  switch (r.state()) {
    case agent::RANK_RUNNING:
      return "running";
    case agent::RANK_EXITED:
      if (r.signal() != 0) return "killed by " + SignalName(r.signal());
      return "exited " + std::to_string(r.exit_code());
    default:
      return "pending";
  }
}

}  // namespace

std::string JobStateName(coordinator::JobState state) {
  std::string name = coordinator::JobState_Name(state);
  return name.empty() ? "UNKNOWN" : name;
}

bool IsTerminal(coordinator::JobState state) {
  return state == coordinator::SUCCEEDED || state == coordinator::FAILED ||
         state == coordinator::KILLED;
}

std::string FormatLogLine(const coordinator::LogLine& line) {
  return "[" + line.host() + ":" + std::to_string(line.rank()) + "] " + line.text();
}

std::string OneLineSummary(const coordinator::JobStatus& job) {
  std::string s = "job " + job.job_id() + " " + JobStateName(job.state());
  if (job.state() == coordinator::FAILED && !job.failure().message().empty()) {
    s += ": " + job.failure().message();
  } else if (!job.message().empty()) {
    s += ": " + job.message();
  }
  return s;
}

std::string RankCountsLine(const coordinator::JobCounts& c) {
  std::string s;
  auto add = [&s](int n, const char* what) {
    if (n > 0) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(c.ranks_running(), "running");
  add(c.ranks_exited_ok(), "exited 0");
  add(c.ranks_exited_error(), "ended otherwise (code, signal or launch error)");
  add(c.ranks_not_started(), "not started");
  return s.empty() ? "none" : s;
}

std::string NodeCountsLine(const coordinator::JobCounts& c) {
  std::string s;
  for (const auto& n : c.node_states()) {
    s += (s.empty() ? "" : ", ") + std::to_string(n.count()) + " " +
         coordinator::NodeStateWord(n.state());
  }
  return s.empty() ? "none" : s;
}

void PrintJobStatus(const coordinator::JobStatus& job, std::ostream& out) {
  out << "job:        " << job.job_id() << "\n"
      << "state:      " << JobStateName(job.state()) << "\n"
      << "generation: " << job.generation() << " (restarts used " << job.restarts() << " of "
      << job.max_restarts() << ")\n"
      << "world:      " << job.world_size() << " ranks (" << job.nodes_size() << " nodes x "
      << job.nproc_per_node() << ")\n"
      << "master:     " << job.master_addr() << ":" << job.master_port() << "\n"
      << "created:    " << FormatTime(job.created_ms()) << "\n";
  if (job.ended_ms() > 0) out << "ended:      " << FormatTime(job.ended_ms()) << "\n";
  if (job.iteration() >= 0 && job.last_progress_ms() > 0) {
    out << "progress:   iteration " << job.iteration();
    if (job.loss() != 0) out << ", loss " << job.loss();
    out << " (last record " << FormatTime(job.last_progress_ms()) << ")\n";
  }
  if (job.last_checkpoint_iteration() >= 0) {
    out << "checkpoint: iteration " << job.last_checkpoint_iteration() << " (the newest saved)\n";
  }
  PrintTimingSummary(job, out);
  if (!job.message().empty() && job.message() != job.failure().message()) {
    out << "message:    " << job.message() << "\n";
  }
  if (job.has_failure() &&
      (job.state() == coordinator::FAILED || !job.failure().message().empty())) {
    const auto& f = job.failure();
    out << (job.state() == coordinator::FAILED ? "failure:    " : "last failure: ") << f.message()
        << "\n";
    if (f.occurred_ms() > 0 && f.time_ms() >= f.occurred_ms()) {
      out << "              detected in " << f.time_ms() - f.occurred_ms() << " ms";
      if (f.confirmed_gone_ms() > 0) {
        out << ", generation gone after " << f.confirmed_gone_ms() - f.time_ms() << " ms";
      }
      if (f.relaunched_ms() > 0)
        out << ", relaunched after " << f.relaunched_ms() - f.time_ms() << " ms";
      out << "\n";
    }
    if (!f.action().empty()) out << "              action: " << f.action() << "\n";
    if (!f.stderr_tail().empty()) {
      out << "last stderr of rank " << f.rank() << " on " << f.host() << ":\n";
      for (const auto& l : f.stderr_tail()) out << "    " << l << "\n";
    }
  }
  const bool paged = job.ranks_size() < job.world_size() || job.nodes_size() < job.counts().nodes();
  if (paged) out << "ranks:      " << RankCountsLine(job.counts()) << "\n";
  if (paged) out << "nodes:      " << NodeCountsLine(job.counts()) << "\n";
  out << "\nNODE  HOST                    STATE        ERROR\n";
  for (const auto& n : job.nodes()) {
    out << std::left << std::setw(6) << n.node_rank() << std::setw(24)
        << (n.host() + ":" + std::to_string(n.port())) << std::setw(13) << coordinator::NodeStateWord(n.state()) << n.error()
        << "\n";
  }
  for (const auto& n : job.spares()) {
    out << std::left << std::setw(6) << "-" << std::setw(24)
        << (n.host() + ":" + std::to_string(n.port())) << coordinator::NodeStateWord(n.state())
        << "\n";
  }
  if (job.failures_size() > 1) {
    out << "\nFAILURES (oldest first)\n";
    for (const auto& f : job.failures()) {
      out << "  " << FormatTime(f.time_ms()) << "  " << f.message();
      if (f.occurred_ms() > 0) out << " [detected in " << f.time_ms() - f.occurred_ms() << " ms]";
      out << "\n";
    }
  }
  out << "\nRANK  NODE  LOCAL  PID      STATE\n";
  for (const auto& r : job.ranks()) {
    out << std::left << std::setw(6) << r.rank() << std::setw(6) << r.node_rank() << std::setw(7)
        << r.local_rank() << std::setw(9) << (r.pid() > 0 ? std::to_string(r.pid()) : "-")
        << RankOutcome(r) << "\n";
  }
  if (paged && job.ranks_size() > 0) {
    out << "(ranks " << job.ranks(0).rank() << "-" << job.ranks(job.ranks_size() - 1).rank()
        << " of " << job.world_size() << " and their nodes, with every node in trouble; more: "
        << "--ranks N --from RANK, or --ranks all)\n";
  }
  PrintTimingTable(job, out);
}

}  // namespace coord::cli
