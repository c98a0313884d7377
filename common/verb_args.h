// Parsing of one verb's arguments for the multi-verb CLIs (coordctl, gpt-rank):
// Boost.Program_options with `--help` added, help and usage errors printed the
// same way everywhere. Exit codes follow both CLIs: 0 after help, 2 on bad usage.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "common/tls.h"

namespace coord {

struct VerbUsage {
  const char* program;  // "coordctl"
  const char* name;     // "start"
  const char* usage;    // "start --config F [--hosts F]"
  const char* summary;  // one line
};

// Parses args (args[0] is the verb). Returns false when the caller should return
// *exit_code: 0 after printing --help, 2 after printing a usage error.
bool ParseVerbArgs(const std::vector<std::string>& args, const VerbUsage& verb,
                   const boost::program_options::options_description& options,
                   const boost::program_options::positional_options_description& positional,
                   boost::program_options::variables_map* vm, int* exit_code);

// The TLS flags every program shares: --tls-ca, --tls-cert, --tls-key (default:
// the certificate's path with .key) and --insecure. `settings->paths` holds the
// defaults when called; FinishTlsOptions records which were given.
void AddTlsOptions(boost::program_options::options_description* options, TlsSettings* settings);
void FinishTlsOptions(const boost::program_options::variables_map& vm, TlsSettings* settings);

}  // namespace coord
