// Shared pieces of coordctl: the verb table entry, global options, exit codes,
// and the output helpers every verb uses. One file per verb in commands/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "common/status.h"
#include "common/tls.h"

namespace coord::cli {

// Exit codes scripts can rely on.
enum ExitCode : int {
  kExitOk = 0,
  kExitJobFailed = 1,  // the job failed or was killed, or a kill could not be confirmed
  kExitUsage = 2,      // bad flags, bad hosts file or job spec, unknown job
  kExitUnreachable = 3 // no coordinator (or agent) answered
};

struct GlobalOptions {
  std::string coordinator;  // host:port; from --coordinator, else $COORD_ADDR, else 127.0.0.1:7070
  int rpc_timeout_ms = 10000;
  // The user's certificate: --tls-dir DIR, else $COORD_TLS_DIR, else ~/.coord/tls
  // (ca.crt, user.crt, user.key); --insecure for plaintext off loopback.
  TlsSettings tls;
};

// A verb gets the global options and its own arguments (argv[0] is the verb).
using VerbFn = int (*)(const GlobalOptions& global, const std::vector<std::string>& args);

struct Verb {
  const char* name;
  const char* usage;    // "start --config F [--hosts F] [--follow]"
  const char* summary;  // one line for `coordctl --help`
  VerbFn run;
};

int RunStart(const GlobalOptions& global, const std::vector<std::string>& args);
int RunKill(const GlobalOptions& global, const std::vector<std::string>& args);
int RunStatus(const GlobalOptions& global, const std::vector<std::string>& args);
int RunTop(const GlobalOptions& global, const std::vector<std::string>& args);
int RunLogs(const GlobalOptions& global, const std::vector<std::string>& args);
int RunJobs(const GlobalOptions& global, const std::vector<std::string>& args);
int RunCheck(const GlobalOptions& global, const std::vector<std::string>& args);
int RunCerts(const GlobalOptions& global, const std::vector<std::string>& args);
int RunProvision(const GlobalOptions& global, const std::vector<std::string>& args);

// Parses a verb's arguments (args[0] is the verb). Returns false after printing
// help (`--help`: *exit_code = 0) or a usage error (*exit_code = 2).
bool ParseVerbArgs(const std::vector<std::string>& args, const Verb& verb,
                   const boost::program_options::options_description& options,
                   const boost::program_options::positional_options_description& positional,
                   boost::program_options::variables_map* vm, int* exit_code);
const Verb& FindVerb(const std::string& name);

// Prints "coordctl: <message>" to stderr and returns the exit code for the status.
int ReportError(const Status& status);
// UNAVAILABLE / DEADLINE_EXCEEDED from the coordinator → 3; bad input → 2; else 1.
int ExitCodeFor(const Status& status);

}  // namespace coord::cli
