// coord-agent: the node daemon. Parses flags, starts an AgentServer, writes
// --port-file, tells systemd it is ready, and on SIGTERM/SIGINT stops serving
// and exits 0 while every job keeps running under its supervisor.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "agent/agent_server.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/ranged_flags.h"
#include "common/rpc_util.h"
#include "common/verb_args.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  coord::agent::AgentOptions opts;
  std::string port_file, http_port_file, log_level = "info";
  po::options_description desc("coord-agent options");
  auto add = desc.add_options();
  add("help,h", "show this help");
  add("listen", po::value(&opts.listen)->default_value(opts.listen), "HOST:PORT (0: pick a port)");
  add("state-dir", po::value(&opts.state_dir), "state directory (required)");
  add("port-file", po::value(&port_file), "write the bound port here (atomically)");
  add("http-listen", po::value(&opts.http_listen),
      "HOST:PORT of the HTTP endpoint (/metrics); HTTPS with client certificates of the "
      "cluster CA unless on loopback without certificates, or --insecure (default: none)");
  add("http-port-file", po::value(&http_port_file),
      "write the HTTP endpoint's bound port here (atomically)");
  // Numeric flags, each with the values it accepts (checked before anything starts).
  coord::RangedFlags numbers("coord-agent");
  numbers.AddInt(&desc, "heartbeat-ms", &opts.heartbeat_ms, 10, 600000,
                 "Watch heartbeat period");
  numbers.AddInt(&desc, "usage-ms", &opts.usage_ms, 0, 3600000,
                 "send the node's CPU, memory, network and GPU usage with a heartbeat this "
                 "often, for coordd's status page (0: never)");
  numbers.AddInt(&desc, "grace-ms", &opts.default_grace_ms, 0, 3600000,
                 "default SIGTERM->SIGKILL grace of Kill (0: SIGKILL at once)");
  numbers.AddInt(&desc, "keep-jobs", &opts.keep_jobs, -1, 1000000,
                 "keep the state dirs (logs, records) of this many finished jobs, and every "
                 "generation that did not end with all ranks exiting 0; older ones are removed "
                 "(-1: keep all)");
  numbers.AddInt(&desc, "min-free-mb", &opts.min_free_mb, 0, 1048576,
                 "refuse launches, naming the reason, while the state dir's filesystem has less "
                 "free than this many MiB; running jobs go on (0: never refuse)");
  add("supervisor", po::value(&opts.supervisor_path),
      "coord-supervisor binary (default: next to this one)");
  add("cgroup-parent", po::value(&opts.cgroup_parent),
      "parent cgroup for jobs (default: auto), or 'none'");
  add("log-level", po::value(&log_level)->default_value(log_level), "debug|info|warning|error");
  coord::TlsSettings tls;
  tls.paths = coord::DaemonTlsPaths("node");
  coord::AddTlsOptions(&desc, &tls);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "coord-agent: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  coord::FinishTlsOptions(vm, &tls);
  if (coord::Status st = numbers.Apply(); !st.ok()) {
    std::cerr << "coord-agent: " << st.message() << "\n";
    return 2;
  }
  coord::LogLevel level;
  if (!coord::ParseLogLevel(log_level, &level)) {
    std::cerr << "coord-agent: --log-level must be debug|info|warning|error\n";
    return 2;
  }
  coord::SetLogLevel(level);
  coord::SetLogTag("coord-agent");
  if (opts.state_dir.empty()) {
    std::cerr << "coord-agent: --state-dir is required\n" << desc;
    return 2;
  }
  // Keep fds 0-2 taken, so nothing we open later lands on them.
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR);
  }
  // Block the stop signals before any thread exists; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Callers: coordd (coordinator certificates) and people running coordctl
  // against an agent directly (user certificates). Never another node.
  auto security = coord::ServerSecurity(
      tls, opts.listen, {coord::CertRole::kCoordinator, coord::CertRole::kUser}, "coord-agent");
  if (!security.ok()) {
    LOG_ERROR << security.status().message();
    return 2;
  }
  opts.security = *security;
  if (!opts.http_listen.empty()) {
    // Prometheus and people read it with user certificates; coordd with its own.
    auto http = coord::HttpServerSecurity(
        tls, opts.http_listen, {coord::CertRole::kUser, coord::CertRole::kCoordinator},
        "coord-agent", "--http-listen");
    if (!http.ok()) {
      LOG_ERROR << http.status().message();
      return 2;
    }
    opts.http_security = *http;
  } else if (!http_port_file.empty()) {
    LOG_ERROR << "--http-port-file needs --http-listen";
    return 2;
  }
  if (opts.security.tls) LOG_INFO << "mutual TLS with certificate " << tls.paths.cert;
  auto server = coord::agent::AgentServer::Create(opts);
  if (!server.ok()) {
    LOG_ERROR << "cannot start: " << server.status().ToString();
    return 2;
  }
  if (!port_file.empty()) {
    coord::Status st = coord::WriteFileAtomic(port_file, std::to_string((*server)->port()) + "\n");
    if (!st.ok()) {
      LOG_ERROR << "cannot write --port-file: " << st.ToString();
      return 2;
    }
  }
  if (!http_port_file.empty()) {
    coord::Status st =
        coord::WriteFileAtomic(http_port_file, std::to_string((*server)->http_port()) + "\n");
    if (!st.ok()) {
      LOG_ERROR << "cannot write --http-port-file: " << st.ToString();
      return 2;
    }
  }
  coord::NotifyReady("listening on port " + std::to_string((*server)->port()));
  int sig = 0;
  sigwait(&stop, &sig);
  LOG_INFO << "got " << strsignal(sig) << "; shutting down";
  coord::NotifyStopping();
  (*server)->Shutdown();
  return 0;
}
