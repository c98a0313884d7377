// coordctl: what people type. `coordctl VERB [options]`; the verbs are a table,
// one file each in commands/. Global options come before the verb.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/logging.h"
#include "coordinator/cli/cli.h"

namespace coord::cli {
namespace {

const Verb kVerbs[] = {
    {"start", "start --config F [--hosts F] [--follow] [--allow-overlap] [--skip-checks] [--local-nodes N]",
     "start a job on the hosts' agents (no --hosts and no coordd: run it locally)", RunStart},
    {"kill", "kill [JOB] [--grace S] [--ssh --hosts F]", "stop every process of a job on every node", RunKill},
    {"status", "status [JOB] [--json] [--watch [--interval S]]",
     "state of a job, its nodes and ranks (--watch: its progress, refreshed)", RunStatus},
    {"top", "top [JOB] [--interval S]",
     "a running job's progress, ETA, speed and slowest ranks, refreshed (status --watch)", RunTop},
    {"logs", "logs [JOB] [--rank R] [-f] [--tail N] [--stdout|--stderr]",
     "the ranks' output, each line prefixed [node:rank]", RunLogs},
    {"jobs", "jobs [--json]", "every job the coordinator knows", RunJobs},
    {"check", "check [--hosts F] [--config F] [--json]",
     "check every node (drivers, CUDA, NCCL, MPI, shared mount, limits) and compare them", RunCheck},
    {"certs", "certs init|issue NAME --role node|coordinator|user|show FILE|export NAME [--dir D]",
     "the cluster CA: create it, issue certificates, show one, export one for a browser",
     RunCerts},
    {"provision", "provision --hosts F PLAYBOOK.yaml [--var K=V] [--forks N] [--check] [--json]",
     "apply a playbook to every host over SSH (playbooks/: hcc-node, agent, uninstall)", RunProvision},
};

}  // namespace

const Verb& FindVerb(const std::string& name) {
  for (const Verb& v : kVerbs) {
    if (name == v.name) return v;
  }
  throw std::logic_error("no verb " + name);  // programmer bug: verbs look themselves up
}

namespace {

void PrintUsage(std::ostream& out) {
  out << "usage: coordctl [--coordinator HOST:PORT] [--timeout-ms N] [--tls-dir DIR] [--insecure]\n"
         "                VERB [options]\n\n"
         "verbs:\n";
  for (const Verb& v : kVerbs) {
    out << "  " << v.usage << "\n      " << v.summary << "\n";
  }
  out << "\nThe coordinator address defaults to $COORD_ADDR, else 127.0.0.1:7070.\n"
         "Certificates (mutual TLS): --tls-dir, else $COORD_TLS_DIR, else ~/.coord/tls, holding\n"
         "ca.crt, user.crt and user.key (`coordctl certs init` creates them). Plaintext is used\n"
         "only to loopback addresses without certificates, or with --insecure.\n"
         "Exit codes: 0 ok, 1 job failed, 2 usage or config error, 3 cannot reach.\n"
         "`coordctl VERB --help` shows a verb's options.\n";
}

}  // namespace
}  // namespace coord::cli

int main(int argc, char** argv) {
  using namespace coord::cli;
  coord::SetLogTag("coordctl");
  // gRPC's own error lines ("Handshake failed ...") are noise to people: coordctl
  // explains failures itself. -v (or GRPC_VERBOSITY) brings them back.
  setenv("GRPC_VERBOSITY", "NONE", 0);
  coord::SetLogLevel(coord::LogLevel::kWarning);
  GlobalOptions global;
  global.tls.paths = coord::UserTlsPaths();
  const char* env_addr = std::getenv("COORD_ADDR");
  global.coordinator = (env_addr && *env_addr) ? env_addr : "127.0.0.1:7070";

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      PrintUsage(std::cout);
      return kExitOk;
    } else if (a == "--coordinator" && i + 1 < argc) {
      global.coordinator = argv[++i];
    } else if (a.rfind("--coordinator=", 0) == 0) {
      global.coordinator = a.substr(strlen("--coordinator="));
    } else if (a == "--timeout-ms" && i + 1 < argc) {
      global.rpc_timeout_ms = std::atoi(argv[++i]);
      if (global.rpc_timeout_ms <= 0) {
        std::cerr << "coordctl: --timeout-ms: expected a positive number of milliseconds\n";
        return kExitUsage;
      }
    } else if ((a == "--tls-dir" && i + 1 < argc) || a.rfind("--tls-dir=", 0) == 0) {
      std::string dir = a == "--tls-dir" ? argv[++i] : a.substr(strlen("--tls-dir="));
      global.tls.paths = coord::TlsPathsIn(dir, "user");
      global.tls.paths_given = true;
      setenv("COORD_TLS_DIR", dir.c_str(), 1);  // `certs` works in the same directory
    } else if (a == "--insecure") {
      global.tls.insecure = true;
    } else if (a == "-v" || a == "--verbose") {
      coord::SetLogLevel(coord::LogLevel::kInfo);
      setenv("GRPC_VERBOSITY", "ERROR", 0);
    } else {
      std::cerr << "coordctl: unknown global option '" << a << "'\n\n";
      PrintUsage(std::cerr);
      return kExitUsage;
    }
  }
  if (i >= argc) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  std::string verb = argv[i];
  std::vector<std::string> args(argv + i, argv + argc);
  for (const Verb& v : kVerbs) {
    if (verb == v.name) return v.run(global, args);
  }
  std::cerr << "coordctl: unknown verb '" << verb << "'\n\n";
  PrintUsage(std::cerr);
  return kExitUsage;
}
