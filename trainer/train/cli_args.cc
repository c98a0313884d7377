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

void SetRankLogTag(int rank) {
  // The hosts-file name Coord gives the node (simulated nodes share one hostname),
  // else the hostname.
  std::string node;
  if (const char* n = std::getenv("COORD_NODE_NAME"); n != nullptr && *n != '\0') node = n;
  if (node.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) node = host;
  }
  std::string rank_text;
  if (rank >= 0) {
    rank_text = std::to_string(rank);
  } else {
    const char* r = std::getenv("RANK");
    rank_text = r != nullptr && *r != '\0' ? r : "0";
  }
  coord::SetLogTag((node.empty() ? std::string("localhost") : node) + ":" + rank_text);
}

int ReportSetupError(const coord::Status& status) {
  LOG_ERROR << status.message();
  switch (status.code()) {
    case coord::StatusCode::kInvalidArgument:
    case coord::StatusCode::kNotFound:
    case coord::StatusCode::kFailedPrecondition:
    case coord::StatusCode::kPermissionDenied:
    case coord::StatusCode::kOutOfRange:
    case coord::StatusCode::kResourceExhausted:  // the config does not fit this machine
      return kExitUsage;
    default:
      return kExitFailed;
  }
}

}  // namespace gpt_rank::train
