// coordd: the coordinator daemon. Only flags, wiring and signals live here (style rule 1);
// everything else is coordinator_lib. SIGTERM/SIGINT stop serving but leave jobs running
// (the journal lets the next coordd pick them up). Exit codes: 0 ok, 1 runtime error, 2 usage.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <string>

#include "common/fs.h"
#include "common/hostfile.h"
#include "common/logging.h"
#include "common/ranged_flags.h"
#include "common/rpc_util.h"
#include "common/verb_args.h"
#include "coordinator/coordinator_server.h"

namespace po = boost::program_options;

namespace {

struct Flags {
  coord::coordinator::CoordinatorOptions options;
  std::string port_file;
  std::string http_port_file;
  std::string log_level = "info";
  coord::TlsSettings tls;
};

// Returns 0 to go on, else the exit code (help: 0 via *done; usage errors: 2).
int ParseFlags(int argc, char** argv, Flags* flags, bool* done) {
  coord::coordinator::CoordinatorOptions& o = flags->options;
  po::options_description desc("coordd: the Coord coordinator daemon\nOptions");
  auto add = desc.add_options();
  add("help,h", "show this help");
  add("listen", po::value(&o.listen)->default_value(o.listen),
      "HOST:PORT to serve on (port 0 picks a free one)");
  add("state-dir", po::value(&o.state_dir)->required(), "directory of the job journal");
  add("port-file", po::value(&flags->port_file), "write the bound port here (atomically)");
  add("http-listen", po::value(&o.http_listen),
      "HOST:PORT of the HTTP endpoint (/metrics, the status page); HTTPS with client "
      "certificates of the cluster CA unless on loopback without certificates, or --insecure "
      "(default: none)");
  add("http-port-file", po::value(&flags->http_port_file),
      "write the HTTP endpoint's bound port here (atomically)");
  add("web-dir", po::value(&o.page.web_dir),
      "the status page's files (default: share/coord/web beside the binary's bin/)");
  add("chart-js-dir", po::value(&o.page.chart_js_dir)->default_value(o.page.chart_js_dir),
      "Chart.js for the status page's charts (Debian: libjs-chart.js)");
  // Numeric flags, each with the values it accepts (checked before anything starts).
  // The heartbeat's floor is the agents' (they clamp a faster one to 10 ms).
  coord::RangedFlags numbers("coordd");
  numbers.AddInt(&desc, "check-reuse-s", &o.check_reuse_s, 0, 24 * 3600,
                 "a job on the same nodes with the same spec reuses node and cluster checks "
                 "that passed this recently on the same agent processes (0: check every job)");
  numbers.AddInt(&desc, "connect-timeout-ms", &o.connect_timeout_ms, 1, 3600000,
                 "how long an agent has to answer Ping when a job starts");
  numbers.AddInt(&desc, "launch-timeout-ms", &o.launch_timeout_ms, 1, 3600000,
                 "how long an agent has to start its ranks");
  numbers.AddInt(&desc, "heartbeat-ms", &o.heartbeat_ms, 10, 600000,
                 "heartbeat period asked of the agents");
  numbers.AddInt(&desc, "missed-heartbeats", &o.missed_heartbeats, 1, 1000,
                 "heartbeats a node may miss before its job fails");
  numbers.AddReal(&desc, "straggler-threshold", &o.straggler.threshold, 0, 1000,
                  "name a rank whose compute time is this many times its peers' (above 1; "
                  "0: never name)");
  numbers.AddInt(&desc, "straggler-window", &o.straggler.window, 2, 10000,
                 "iterations per rank its straggler score is the median of");
  numbers.AddInt(&desc, "journal-compact-mb", &o.journal_compact_mb, 1, 1 << 20,
                 "rewrite the journal as a snapshot once it grows past this many MiB");
  numbers.AddInt(&desc, "keep-finished-jobs", &o.keep_finished_jobs, 0, 10000000,
                 "finished jobs remembered (older ones, ended over an hour ago, are forgotten)");
  add("log-level", po::value(&flags->log_level)->default_value(flags->log_level),
      "debug|info|warning|error");
  flags->tls.paths = coord::DaemonTlsPaths("coordinator");
  coord::AddTlsOptions(&desc, &flags->tls);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      *done = true;
      return 0;
    }
    po::notify(vm);
    coord::FinishTlsOptions(vm, &flags->tls);
  } catch (const po::error& e) {
    std::cerr << "coordd: " << e.what() << "\n(see coordd --help)\n";
    return 2;
  }
  coord::LogLevel level;
  if (!coord::ParseLogLevel(flags->log_level, &level)) {
    std::cerr << "coordd: --log-level: expected debug|info|warning|error, got '" << flags->log_level
              << "'\n";
    return 2;
  }
  coord::SetLogLevel(level);
  coord::Status numbers_ok = numbers.Apply();
  if (numbers_ok.ok() && o.straggler.threshold > 0 && o.straggler.threshold <= 1) {
    numbers_ok = numbers.RangeError("straggler-threshold",
                                    vm["straggler-threshold"].as<std::string>(),
                                    "0 (off) or a number in (1, 1000]");
  }
  if (!numbers_ok.ok()) {
    std::cerr << "coordd: " << numbers_ok.message() << "\n";
    return 2;
  }
  // Scored once half the window has peers to compare; cleared at the threshold's
  // second half (1.2 -> 1.1), so a score at the line does not flap.
  o.straggler.min_samples = std::max(1, o.straggler.window / 2);
  o.straggler.clear_threshold = 1 + (o.straggler.threshold - 1) / 2;
  return 0;
}

// coordd holds a connection to every agent (up to kMaxHosts) besides its clients' and
// the journal: a shell's soft limit of 1024 descriptors is reached at ~1,000 nodes.
// Raise it to the hard limit (the systemd unit sets LimitNOFILE itself) and say so
// when even that is short.
void RaiseFileLimit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return;
  if (l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  constexpr rlim_t kWanted = 2 * coord::kMaxHosts + 1024;
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < kWanted) {
    LOG_WARN << "open files limited to " << l.rlim_cur << " (ulimit -n): a cluster of more than "
             << (l.rlim_cur > 1024 ? (l.rlim_cur - 1024) / 2 : 0)
             << " nodes may run out; raise the hard limit to " << kWanted;
  }
}

}  // namespace

int main(int argc, char** argv) {
  coord::SetLogTag("coordd");
  Flags flags;
  bool done = false;
  if (int rc = ParseFlags(argc, argv, &flags, &done); rc != 0 || done) return rc;

  // Block the stop signals before any thread exists, so every thread inherits the mask
  // and only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  RaiseFileLimit();

  // coordctl users call coordd; coordd presents the same certificate to agents.
  auto security = coord::ServerSecurity(flags.tls, flags.options.listen, {coord::CertRole::kUser},
                                        "coordd");
  if (!security.ok()) {
    LOG_ERROR << security.status().message();
    return 2;
  }
  flags.options.security = *security;
  if (!flags.options.http_listen.empty()) {
    // People and Prometheus read it: user certificates (and coordinator ones, for tools
    // that run with coordd's identity).
    auto http = coord::HttpServerSecurity(flags.tls, flags.options.http_listen,
                                          {coord::CertRole::kUser, coord::CertRole::kCoordinator},
                                          "coordd", "--http-listen");
    if (!http.ok()) {
      LOG_ERROR << http.status().message();
      return 2;
    }
    flags.options.http_security = *http;
  } else if (!flags.http_port_file.empty()) {
    LOG_ERROR << "--http-port-file needs --http-listen";
    return 2;
  }
  flags.options.agent_tls = flags.tls;
  if (security->tls) LOG_INFO << "mutual TLS with certificate " << flags.tls.paths.cert;
  auto server = coord::coordinator::CoordinatorServer::Create(flags.options);
  if (!server.ok()) {
    LOG_ERROR << server.status().ToString();
    return 1;
  }
  const int port = (*server)->port();
  LOG_INFO << "listening on " << flags.options.listen.substr(0, flags.options.listen.rfind(':'))
           << ":" << port << " (state dir " << flags.options.state_dir << ")";
  if (!flags.port_file.empty()) {
    coord::Status st = coord::WriteFileAtomic(flags.port_file, std::to_string(port) + "\n");
    if (!st.ok()) {
      LOG_ERROR << "--port-file: " << st.ToString();
      return 1;
    }
  }
  if (!flags.http_port_file.empty()) {
    coord::Status st = coord::WriteFileAtomic(flags.http_port_file,
                                              std::to_string((*server)->http_port()) + "\n");
    if (!st.ok()) {
      LOG_ERROR << "--http-port-file: " << st.ToString();
      return 1;
    }
  }
  coord::NotifyReady("listening on port " + std::to_string(port));

  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG_INFO << "signal " << sig << ": shutting down (jobs keep running)";
  coord::NotifyStopping();
  (*server)->Shutdown();
  return 0;
}
