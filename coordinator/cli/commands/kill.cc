// coordctl kill: the replacement for all-kill.sh. Stops every process of a job
// on every node (SIGTERM, grace, SIGKILL, verified by each agent) and says
// which nodes could not confirm that nothing is left.
#include <iostream>

#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"

namespace coord::cli {

namespace po = boost::program_options;

int RunKill(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string job_id;
  double grace_s = -1;
  po::options_description opts("kill options");
  opts.add_options()
      ("job", po::value(&job_id), "job id (default: the running job)")
      ("grace", po::value(&grace_s), "seconds between SIGTERM and SIGKILL (default: the job's launch.kill_grace_s)");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("kill"), opts, pos, &vm, &code)) return code;
  if (vm.count("grace") && (grace_s < 0 || grace_s > 3600)) {
    std::cerr << "coordctl kill: --grace: expected 0..3600 seconds\n";
    return kExitUsage;
  }

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms);
  coordinator::KillJobRequest req;
  req.set_job_id(job_id);
  if (grace_s >= 0) req.set_grace_ms(static_cast<int>(grace_s * 1000));
  auto reply = client.KillJob(req);
  if (!reply.ok()) return ReportError(reply.status());
  if (!reply->message().empty()) std::cout << reply->message() << "\n";
  if (reply->confirmed_clean()) {
    std::cout << "killed " << reply->job_id() << ": every node confirmed no process is left\n";
    return kExitOk;
  }
  std::cout << "killed " << reply->job_id() << ", but these nodes could not confirm they are clean:";
  for (const auto& h : reply->unconfirmed_hosts()) std::cout << " " << h;
  std::cout << "\n(check them, or run `coordctl kill` again once they answer)\n";
  return kExitJobFailed;
}

}  // namespace coord::cli
