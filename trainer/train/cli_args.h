// Shared plumbing of gpt-rank's verbs (trainer/cli/*.cc): Boost.Program_options
// parsing with --help on every verb, the exit codes, and the "[host:rank]" log tag.
// Runs on the main thread before anything else.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpt_rank::train {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // training (or the verb's work) failed
inline constexpr int kExitUsage = 2;   // bad usage or config

struct VerbInfo {
  const char* name;     // "train"
  const char* usage;    // "train --config F [--set K=V ...]"
  const char* summary;  // one line
};

// Parses args (args[0] is the verb). false when the caller should return *exit_code:
// after --help (0) or a usage error (2, message on stderr).
bool ParseVerbArgs(const std::vector<std::string>& args, const VerbInfo& verb,
                   const boost::program_options::options_description& options,
                   const boost::program_options::positional_options_description& positional,
                   boost::program_options::variables_map* vm, int* exit_code);

// The log tag "node:rank": node is COORD_NODE_NAME (set by coord-agent) or the
// hostname; rank is `rank` when >= 0, else RANK from the environment (0 when unset).
void SetRankLogTag(int rank = -1);

// Prints the error to the log and maps it to an exit code: configuration and data
// problems (InvalidArgument, NotFound, FailedPrecondition, PermissionDenied) are 2,
// the rest 1.
int ReportSetupError(const coord::Status& status);

}  // namespace gpt_rank::train
