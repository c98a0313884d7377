// coordctl status: a job's state, nodes, ranks, and for a failed job the first
// rank that failed with the end of its stderr. --json for scripts.
#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "coordinator/cli/cli.h"
#include "coordinator/cli/coordinator_client.h"
#include "coordinator/cli/format.h"

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

int RunStatus(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string job_id;
  bool json = false;
  po::options_description opts("status options");
  opts.add_options()
      ("job", po::value(&job_id), "job id (default: the most recent job)")
      ("json", po::bool_switch(&json), "print the status as JSON");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  int code = 0;
  if (!ParseVerbArgs(args, FindVerb("status"), opts, pos, &vm, &code)) return code;

  CoordinatorClient client(global.coordinator, global.rpc_timeout_ms, global.tls);
  auto job = client.GetJob(job_id);
  if (!job.ok()) return ReportError(job.status());
  if (json) {
    std::cout << ToJson(*job);
  } else {
    PrintJobStatus(*job, std::cout);
  }
  return job->state() == coordinator::FAILED ? kExitJobFailed : kExitOk;
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
  auto list = client.ListJobs();
  if (!list.ok()) return ReportError(list.status());
  if (json) {
    std::cout << ToJson(*list);
    return kExitOk;
  }
  std::printf("%-24s %-11s %5s %6s  %s\n", "JOB", "STATE", "NODES", "RANKS", "SUMMARY");
  for (const auto& j : list->jobs()) {
    std::printf("%-24s %-11s %5d %6d  %s\n", j.job_id().c_str(), JobStateName(j.state()).c_str(),
                j.nodes_size(), j.world_size(),
                j.state() == coordinator::FAILED ? j.failure().message().c_str() : j.message().c_str());
  }
  return kExitOk;
}

}  // namespace coord::cli
