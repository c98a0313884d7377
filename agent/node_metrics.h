// The node's own counters for the agent's /metrics page, read from /proc and named as
// Prometheus's node_exporter names them (so its dashboards work unchanged):
//   cpu      node_cpu_seconds_total{cpu,mode}          /proc/stat
//   memory   node_memory_<Field>_bytes                  /proc/meminfo
//   network  node_network_{receive,transmit}_*_total{device}   /proc/net/dev
//   disk     node_disk_{reads_completed,read_bytes,...}_total{device}   /proc/diskstats
//   load     node_load1, node_load5, node_load15        /proc/loadavg
// and each running rank's CPU time and resident memory (/proc/<pid>/stat). The parsers
// are pure functions of a file's text (unit-tested on captured files); the collectors
// read under `proc_root` ("/proc"; tests give a directory of fixtures). Runs on the
// HTTP server's threads; stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/state_dir.h"
#include "common/metrics.h"

namespace coord::agent {

// --- parsers ----------------------------------------------------------------------------

// One "cpuN" line of /proc/stat, in seconds.
struct CpuTimes {
  std::string cpu;  // "0", "1", ... (the aggregate "cpu" line is skipped)
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
};
std::vector<CpuTimes> ParseCpuTimes(const std::string& proc_stat, double ticks_per_second);

// /proc/meminfo as node_exporter names it: "Active(anon)" -> "Active_anon", kB values
// in bytes with "_bytes" appended; unitless fields (HugePages_Total) as they are.
struct MeminfoField {
  std::string name;  // "MemTotal_bytes", "HugePages_Total"
  double value = 0;
};
std::vector<MeminfoField> ParseMeminfo(const std::string& text);

struct NetDevCounters {
  std::string device;
  uint64_t rx_bytes = 0, rx_packets = 0, rx_errs = 0, rx_drop = 0;
  uint64_t tx_bytes = 0, tx_packets = 0, tx_errs = 0, tx_drop = 0;
};
std::vector<NetDevCounters> ParseNetDev(const std::string& text);

// Whole disks only: partitions, ram and loop devices are left out, as node_exporter's
// default device filter does.
struct DiskCounters {
  std::string device;
  uint64_t reads_completed = 0, read_bytes = 0, writes_completed = 0, written_bytes = 0;
  double io_time_seconds = 0;
};
std::vector<DiskCounters> ParseDiskstats(const std::string& text);
bool IgnoredDiskDevice(const std::string& device);

// --- collectors ---------------------------------------------------------------------------

// CPU, memory, network, disk and load of the node. A file that cannot be read leaves
// its metrics out (a container without /proc/diskstats still gets the rest).
void CollectNodeMetrics(const std::string& proc_root, metrics::MetricsPage* page);

// A rank of a running job on this node, as the agent supervises it.
struct RunningRank {
  std::string job_id;
  int generation = 0;
  int rank = 0;
  int local_rank = 0;
  ProcId proc;  // pid + start ticks: a reused pid is not the rank
};
// coord_rank_cpu_seconds_total and coord_rank_resident_memory_bytes for each rank
// whose process is still the one started (labels job_id, generation, rank, local_rank).
void CollectRankMetrics(const std::vector<RunningRank>& ranks, const std::string& proc_root,
                        metrics::MetricsPage* page);

}  // namespace coord::agent
