// coordctl logs: the ranks' stdout/stderr from every node, merged, each line
// prefixed [node:rank]; -f follows until the job ends.
#include <iostream>

#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"
#include "coordinator/cli/format.h"

namespace coord::cli {

namespace po = boost::program_options;

int RunLogs(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string job_id;
  int rank = -1;
  int tail = 0;
  bool follow = false, only_out = false, only_err = false;
  po::options_description opts("logs options");
  opts.add_options()
      ("job", po::value(&job_id), "job id (default: the most recent job)")
      ("rank,r", po::value(&rank), "only this global rank")
      ("follow,f", po::bool_switch(&follow), "keep streaming until the job ends")
      ("tail,n", po::value(&tail), "only the last N lines of each rank first")
      ("stdout", po::bool_switch(&only_out), "only standard output")
      ("stderr", po::bool_switch(&only_err), "only standard error");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("logs"), opts, pos, &vm, &code)) return code;
  if (vm.count("rank") && rank < 0) {
    std::cerr << "coordctl logs: --rank: expected a rank >= 0\n";
    return kExitUsage;
  }
  if (tail < 0) {
    std::cerr << "coordctl logs: --tail: expected a number of lines >= 0\n";
    return kExitUsage;
  }
  if (only_out && only_err) {
    std::cerr << "coordctl logs: --stdout and --stderr exclude each other (give neither for both)\n";
    return kExitUsage;
  }

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms, global.tls);
  coordinator::StreamLogsRequest req;
  req.set_job_id(job_id);
  req.set_rank(rank);
  req.set_follow(follow);
  req.set_tail_lines(tail);
  req.set_stream(only_out ? agent::LOG_STDOUT : only_err ? agent::LOG_STDERR : agent::LOG_BOTH);
  Status st = client.StreamLogs(req, [](const coordinator::LogBatch& batch) {
    for (const auto& line : batch.lines()) std::cout << FormatLogLine(line) << "\n";
    std::cout.flush();
  });
  return st.ok() ? kExitOk : ReportError(st);
}

}  // namespace coord::cli
