// sim_agents: N simulated coord-agents in one process (tests/programs/sim_agents.h), for
// scale benchmarks. Writes the agents' hosts file, prints "ready N", then reads one
// command a line on stdin and answers each with one line on stdout:
//   exit RANK CODE [JOB]   rank RANK (of JOB's newest generation) exits with CODE
//   finish                 every running rank exits 0
//   lose AGENT             agent AGENT (0-based) vanishes as a crashed node does
//   stats                  counts of agents, streams, ranks, RPCs, heartbeats
// EOF or "quit" stops every agent.
//
//   sim_agents --agents 1250 --progress-ms 500 --hosts-file hosts.txt
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/fs.h"
#include "tests/programs/sim_agents.h"

namespace {

int Usage(const char* why) {
  std::cerr << "sim_agents: " << why
            << "\nusage: sim_agents --agents N --hosts-file PATH [--progress-ms MS] "
               "[--first-octet K]\n";
  return 2;
}

// Two sockets per agent (its listener and coordd's connection): past a soft limit of 1024.
void RaiseFileLimit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

}  // namespace

int main(int argc, char** argv) {
  coord::sim::SimOptions options;
  std::string hosts_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--agents") {
      options.agents = std::atoi(v);
    } else if (a == "--progress-ms") {
      options.progress_ms = std::atoi(v);
    } else if (a == "--first-octet") {
      options.first_octet = std::atoi(v);
    } else if (a == "--hosts-file") {
      hosts_file = v;
    } else {
      return Usage(("unknown flag " + a).c_str());
    }
  }
  if (hosts_file.empty()) return Usage("--hosts-file is required");
  RaiseFileLimit();
  auto cluster = coord::sim::SimCluster::Create(options);
  if (!cluster.ok()) {
    std::cerr << "sim_agents: " << cluster.status().ToString() << "\n";
    return 1;
  }
  coord::Status st = coord::WriteFileAtomic(hosts_file, (*cluster)->HostsText());
  if (!st.ok()) {
    std::cerr << "sim_agents: " << st.ToString() << "\n";
    return 1;
  }
  std::cout << "ready " << (*cluster)->size() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    if (line.empty()) continue;
    std::cout << (*cluster)->Command(line) << std::endl;
  }
  return 0;
}
