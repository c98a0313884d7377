// Option parsing, log tag and exit-code mapping for gpt-rank's verbs (cli_args.h).
#include "trainer/train/cli_args.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "common/logging.h"
#include "common/verb_args.h"

namespace gpt_rank::train {

namespace po = boost::program_options;

bool ParseVerbArgs(const std::vector<std::string>& args, const VerbInfo& verb,
                   const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map* vm,
                   int* exit_code) {
  return coord::ParseVerbArgs(args, {"gpt-rank", verb.name, verb.usage, verb.summary}, options,
                              positional, vm, exit_code);
}

void SetRankLogTag() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  const char* rank = std::getenv("RANK");
  coord::SetLogTag(std::string(host[0] ? host : "localhost") + ":" +
                   (rank != nullptr && *rank != '\0' ? rank : "0"));
}

int ReportSetupError(const coord::Status& status) {
  LOG_ERROR << status.message();
  switch (status.code()) {
    case coord::StatusCode::kInvalidArgument:
    case coord::StatusCode::kNotFound:
    case coord::StatusCode::kFailedPrecondition:
    case coord::StatusCode::kPermissionDenied:
    case coord::StatusCode::kOutOfRange:
      return kExitUsage;
    default:
      return kExitFailed;
  }
}

}  // namespace gpt_rank::train
