// Helpers shared by the verbs: error reporting and exit-code mapping.
#include <iostream>
#include <stdexcept>

#include "common/verb_args.h"
#include "coordinator/cli/cli.h"

namespace coord::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: return kExitUnreachable;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return kExitUsage;
    default: return kExitJobFailed;
  }
}

int ReportError(const Status& status) {
  std::cerr << "coordctl: " << status.message() << "\n";
  return ExitCodeFor(status);
}

}  // namespace coord::cli

namespace coord::cli {

namespace po = boost::program_options;

bool ParseVerbArgs(const std::vector<std::string>& args, const Verb& verb,
                   const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map* vm,
                   int* exit_code) {
  return coord::ParseVerbArgs(args, {"coordctl", verb.name, verb.usage, verb.summary}, options,
                              positional, vm, exit_code);
}

}  // namespace coord::cli
