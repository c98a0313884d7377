// coordctl status: a job's state, nodes, ranks, and for a failed job the first
// rank that failed with the end of its stderr. --json for scripts (--slowest N: the
// counts and the N slowest ranks' timings, the view --watch refreshes). --watch (and
// `coordctl top`): the job's progress refreshed until it ends: a panel on a terminal,
// one plain line per new iteration otherwise.
#include <google/protobuf/util/json_util.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "common/clock.h"
#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"
#include "coordinator/cli/format.h"
#include "coordinator/cli/progress_view.h"

namespace coord::cli {

namespace po = boost::program_options;

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

namespace {

// Rank rows `status` shows as text unless --ranks says otherwise: a job of 10,000 ranks
// is summarised (counts) and paged, not printed in full.
constexpr int kStatusRanks = 64;

int ParseRankLimit(const std::string& text) {
  try {
    size_t used = 0;
    const int n = std::stoi(text, &used);
    return used == text.size() ? n : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// Until the job ends: on a terminal the panel, redrawn every interval; otherwise one
// progress line whenever the iteration or state changes.
int Watch(CoordinatorClient& client, std::string job_id, double interval_s) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  int64_t shown_iteration = -2;
  coordinator::JobState shown_state = coordinator::JOB_STATE_UNKNOWN;
  for (;;) {
    struct winsize ws {};
    const bool sized = tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0;
    const size_t width = sized ? ws.ws_col : 120;
    // The panel's rank rows; without a terminal only the line (it names the slowest).
    const int rows = !tty ? 1 : sized ? std::max(4, ws.ws_row - 6) : 20;
    auto job = client.GetJob(ProgressRequest(job_id, rows));
    if (!job.ok()) return ReportError(job.status());
    job_id = job->job_id();  // "the most recent job" stays this one
    if (tty) {
      std::cout << "\033[H\033[2J";  // home, clear
      for (const std::string& line : ProgressPanel(*job, WallMs(), rows, width)) {
        std::cout << line << "\n";
      }
      std::cout.flush();
    } else if (job->iteration() != shown_iteration || job->state() != shown_state) {
      std::cout << ProgressLine(*job) << std::endl;
      shown_iteration = job->iteration();
      shown_state = job->state();
    }
    if (IsTerminal(job->state())) {
      std::cout << OneLineSummary(*job) << std::endl;
      return job->state() == coordinator::SUCCEEDED ? kExitOk : kExitJobFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(interval_s * 1000)));
  }
}

}  // namespace

int RunStatus(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string job_id;
  bool json = false, watch = false;
  double interval_s = 1.0;
  std::string ranks = "";  // text: kStatusRanks; --json: all
  int from = 0, slowest = 0;
  po::options_description opts("status options");
  opts.add_options()
      ("job", po::value(&job_id), "job id (default: the most recent job)")
      ("json", po::bool_switch(&json), "print the status as JSON")
      ("watch,w", po::bool_switch(&watch), "show the job's progress, refreshed until it ends")
      ("interval", po::value(&interval_s)->default_value(1.0), "seconds between refreshes")
      ("ranks", po::value(&ranks), "rank rows to show, or 'all' (default: 64 as text, all with --json)")
      ("from", po::value(&from)->default_value(0), "the first rank row shown (with --ranks)")
      ("slowest", po::value(&slowest)->default_value(0),
       "with --json: no rank rows, the N slowest ranks' timings (what --watch refreshes)");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  int code = 0;
  const Verb& verb = FindVerb(args.empty() || args[0] != "top" ? "status" : "top");
  if (!ParseVerbArgs(args, verb, opts, pos, &vm, &code)) return code;
  if (!(interval_s >= 0.1 && interval_s <= 3600)) {
    std::cerr << "coordctl: --interval: expected seconds in [0.1, 3600]\n";
    return kExitUsage;
  }
  if (watch && json) {
    std::cerr << "coordctl: --watch and --json do not go together (poll status --json instead)\n";
    return kExitUsage;
  }

  int rank_limit = json ? 0 : kStatusRanks;
  if (ranks == "all") {
    rank_limit = 0;
  } else if (!ranks.empty()) {
    rank_limit = ParseRankLimit(ranks);
    if (rank_limit <= 0) {
      std::cerr << "coordctl: --ranks: expected a positive number or 'all', got '" << ranks << "'\n";
      return kExitUsage;
    }
  }
  if (from < 0) {
    std::cerr << "coordctl: --from: expected a rank >= 0\n";
    return kExitUsage;
  }

  if (slowest < 0 || (slowest > 0 && (!json || !ranks.empty() || from > 0))) {
    std::cerr << "coordctl: --slowest: expected a number of ranks >= 1, with --json and "
                 "without --ranks/--from\n";
    return kExitUsage;
  }

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms, global.tls);
  if (watch || verb.run == RunTop) return Watch(client, job_id, interval_s);
  auto job = slowest > 0 ? client.GetJob(ProgressRequest(job_id, slowest))
                         : client.GetJob(job_id, rank_limit, from);
  if (!job.ok()) return ReportError(job.status());
  if (json) {
    std::cout << ToJson(*job);
  } else {
    PrintJobStatus(*job, std::cout);
  }
  return job->state() == coordinator::FAILED ? kExitJobFailed : kExitOk;
}

// `coordctl top [JOB]`: status --watch.
int RunTop(const GlobalOptions& global, const std::vector<std::string>& args) {
  return RunStatus(global, args);
}

int RunJobs(const GlobalOptions& global, const std::vector<std::string>& args) {
  bool json = false;
  po::options_description opts("jobs options");
  opts.add_options()("json", po::bool_switch(&json), "print as JSON");
  po::positional_options_description pos;
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("jobs"), opts, pos, &vm, &code)) return code;

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms, global.tls);
  auto list = client.ListJobs(/*summary=*/true);  // a listing: counts, not every rank
  if (!list.ok()) return ReportError(list.status());
  if (json) {
    std::cout << ToJson(*list);
    return kExitOk;
  }
  std::printf("%-24s %-11s %5s %6s  %s\n", "JOB", "STATE", "NODES", "RANKS", "SUMMARY");
  for (const auto& j : list->jobs()) {
    std::printf("%-24s %-11s %5d %6d  %s\n", j.job_id().c_str(), JobStateName(j.state()).c_str(),
                j.counts().nodes(), j.world_size(),
                j.state() == coordinator::FAILED ? j.failure().message().c_str() : j.message().c_str());
  }
  return kExitOk;
}

}  // namespace coord::cli
