// Helpers shared by the verbs: error reporting and exit-code mapping.
#include <iostream>
#include <stdexcept>

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
  po::options_description all(options);
  all.add_options()("help,h", "show this help");
  try {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::store(po::command_line_parser(rest).options(all).positional(positional).run(), *vm);
    if (vm->count("help")) {
      std::cout << "usage: coordctl " << verb.usage << "\n" << verb.summary << "\n\n" << all;
      *exit_code = kExitOk;
      return false;
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    std::cerr << "coordctl " << verb.name << ": " << e.what() << "\nusage: coordctl " << verb.usage
              << "\n";
    *exit_code = kExitUsage;
    return false;
  }
  return true;
}

}  // namespace coord::cli
