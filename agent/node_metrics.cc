// /proc parsers and the node / rank collectors (see node_metrics.h). Metric names,
// labels and help texts follow node_exporter's collectors (cpu_linux.go,
// meminfo_linux.go, netdev_linux.go, diskstats_linux.go, loadavg.go).
#include "agent/node_metrics.h"

#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>

#include "agent/proc_scan.h"

namespace coord::agent {
namespace {

using metrics::MetricsPage;

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

uint64_t U64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

bool ReadUnder(const std::string& proc_root, const std::string& rel, std::string* out) {
  return ReadProcFile(proc_root + "/" + rel, out, 4 << 20);
}

// --- one collector per /proc file, as node_exporter keeps one per file -------------

void CollectCpu(const std::string& text, MetricsPage* page) {
  static const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const char* help = "Seconds the CPUs spent in each mode.";
  for (const CpuTimes& c : ParseCpuTimes(text, kTicks)) {
    const std::pair<const char*, double> modes[] = {
        {"user", c.user},     {"nice", c.nice}, {"system", c.system},   {"idle", c.idle},
        {"iowait", c.iowait}, {"irq", c.irq},   {"softirq", c.softirq}, {"steal", c.steal}};
    for (const auto& [mode, seconds] : modes) {
      page->Counter("node_cpu_seconds_total", help, {{"cpu", c.cpu}, {"mode", mode}}, seconds);
    }
  }
}

void CollectMemory(const std::string& text, MetricsPage* page) {
  for (const MeminfoField& f : ParseMeminfo(text)) {
    page->Gauge("node_memory_" + f.name, "Memory information field " + f.name + ".", {}, f.value);
  }
}

void CollectNetwork(const std::string& text, MetricsPage* page) {
  for (const NetDevCounters& d : ParseNetDev(text)) {
    const metrics::Labels l = {{"device", d.device}};
    const std::pair<const char*, uint64_t> stats[] = {
        {"receive_bytes", d.rx_bytes},  {"receive_packets", d.rx_packets},
        {"receive_errs", d.rx_errs},    {"receive_drop", d.rx_drop},
        {"transmit_bytes", d.tx_bytes}, {"transmit_packets", d.tx_packets},
        {"transmit_errs", d.tx_errs},   {"transmit_drop", d.tx_drop}};
    for (const auto& [stat, value] : stats) {
      page->Counter(std::string("node_network_") + stat + "_total",
                    std::string("Network device statistic ") + stat + ".", l,
                    static_cast<double>(value));
    }
  }
}

void CollectDisks(const std::string& text, MetricsPage* page) {
  for (const DiskCounters& d : ParseDiskstats(text)) {
    const metrics::Labels l = {{"device", d.device}};
    page->Counter("node_disk_reads_completed_total",
                  "The total number of reads completed successfully.", l,
                  static_cast<double>(d.reads_completed));
    page->Counter("node_disk_read_bytes_total", "The total number of bytes read successfully.", l,
                  static_cast<double>(d.read_bytes));
    page->Counter("node_disk_writes_completed_total",
                  "The total number of writes completed successfully.", l,
                  static_cast<double>(d.writes_completed));
    page->Counter("node_disk_written_bytes_total",
                  "The total number of bytes written successfully.", l,
                  static_cast<double>(d.written_bytes));
    page->Counter("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", l,
                  d.io_time_seconds);
  }
}

void CollectLoad(const std::string& text, MetricsPage* page) {
  std::vector<std::string> w = Words(text);
  if (w.size() < 3) return;
  page->Gauge("node_load1", "1m load average.", {}, std::strtod(w[0].c_str(), nullptr));
  page->Gauge("node_load5", "5m load average.", {}, std::strtod(w[1].c_str(), nullptr));
  page->Gauge("node_load15", "15m load average.", {}, std::strtod(w[2].c_str(), nullptr));
}

}  // namespace

// --- parsers ----------------------------------------------------------------------------

std::vector<CpuTimes> ParseCpuTimes(const std::string& proc_stat, double ticks_per_second) {
  std::vector<CpuTimes> out;
  if (ticks_per_second <= 0) return out;
  for (const std::string& line : Lines(proc_stat)) {
    std::vector<std::string> w = Words(line);
    // "cpuN user nice system idle iowait irq softirq steal guest guest_nice"
    if (w.size() < 5 || w[0].size() <= 3 || w[0].compare(0, 3, "cpu") != 0) continue;
    CpuTimes c;
    c.cpu = w[0].substr(3);
    double* fields[] = {&c.user,   &c.nice, &c.system,  &c.idle,
                        &c.iowait, &c.irq,  &c.softirq, &c.steal};
    for (size_t i = 0; i < 8 && i + 1 < w.size(); ++i) {
      *fields[i] = static_cast<double>(U64(w[i + 1])) / ticks_per_second;
    }
    out.push_back(c);
  }
  return out;
}

std::vector<MeminfoField> ParseMeminfo(const std::string& text) {
  std::vector<MeminfoField> out;
  for (const std::string& line : Lines(text)) {
    std::vector<std::string> w = Words(line);
    if (w.size() < 2 || w[0].size() < 2 || w[0].back() != ':') continue;
    std::string key = w[0].substr(0, w[0].size() - 1);
    // "Active(anon)" -> "Active_anon"
    if (size_t open = key.find('('); open != std::string::npos) {
      size_t close = key.find(')', open);
      if (close == std::string::npos) continue;
      key = key.substr(0, open) + "_" + key.substr(open + 1, close - open - 1) +
            key.substr(close + 1);
    }
    if (!metrics::ValidMetricName("node_memory_" + key)) continue;
    double value = std::strtod(w[1].c_str(), nullptr);
    if (w.size() >= 3) {  // a unit: always kB in meminfo
      value *= 1024;
      key += "_bytes";
    }
    out.push_back({key, value});
  }
  return out;
}

std::vector<NetDevCounters> ParseNetDev(const std::string& text) {
  std::vector<NetDevCounters> out;
  for (const std::string& line : Lines(text)) {
    // "  eth0: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed multicast
    //         tx_bytes tx_packets tx_errs tx_drop ..."; the two header lines have '|'.
    size_t colon = line.find(':');
    if (colon == std::string::npos || line.find('|') != std::string::npos) continue;
    std::vector<std::string> w = Words(line.substr(colon + 1));
    std::vector<std::string> name = Words(line.substr(0, colon));
    if (name.size() != 1 || w.size() < 12) continue;
    NetDevCounters d;
    d.device = name[0];
    d.rx_bytes = U64(w[0]);
    d.rx_packets = U64(w[1]);
    d.rx_errs = U64(w[2]);
    d.rx_drop = U64(w[3]);
    d.tx_bytes = U64(w[8]);
    d.tx_packets = U64(w[9]);
    d.tx_errs = U64(w[10]);
    d.tx_drop = U64(w[11]);
    out.push_back(d);
  }
  return out;
}

bool IgnoredDiskDevice(const std::string& device) {
  // node_exporter's default --collector.diskstats.device-exclude.
  static const std::regex kIgnored(R"(^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$)");
  return std::regex_match(device, kIgnored);
}

std::vector<DiskCounters> ParseDiskstats(const std::string& text) {
  std::vector<DiskCounters> out;
  for (const std::string& line : Lines(text)) {
    // major minor name reads merged sectors_read ms_reading writes merged
    // sectors_written ms_writing in_progress ms_doing_io weighted_ms ...
    std::vector<std::string> w = Words(line);
    if (w.size() < 14 || IgnoredDiskDevice(w[2])) continue;
    DiskCounters d;
    d.device = w[2];
    d.reads_completed = U64(w[3]);
    d.read_bytes = U64(w[5]) * 512;  // diskstats counts 512-byte sectors on every device
    d.writes_completed = U64(w[7]);
    d.written_bytes = U64(w[9]) * 512;
    d.io_time_seconds = static_cast<double>(U64(w[12])) / 1000.0;
    out.push_back(d);
  }
  return out;
}

// --- collectors ---------------------------------------------------------------------------

void CollectNodeMetrics(const std::string& proc_root, MetricsPage* page) {
  std::string text;
  if (ReadUnder(proc_root, "stat", &text)) CollectCpu(text, page);
  if (ReadUnder(proc_root, "meminfo", &text)) CollectMemory(text, page);
  if (ReadUnder(proc_root, "net/dev", &text)) CollectNetwork(text, page);
  if (ReadUnder(proc_root, "diskstats", &text)) CollectDisks(text, page);
  if (ReadUnder(proc_root, "loadavg", &text)) CollectLoad(text, page);
}

void CollectRankMetrics(const std::vector<RunningRank>& ranks, const std::string& proc_root,
                        MetricsPage* page) {
  static const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double kPage = static_cast<double>(sysconf(_SC_PAGESIZE));
  for (const RunningRank& r : ranks) {
    std::string text;
    ProcStat st;
    if (!ReadUnder(proc_root, std::to_string(r.proc.pid) + "/stat", &text) ||
        !ParseProcStat(text, &st) || st.state == 'Z') {
      continue;  // gone since the agent last looked
    }
    if (r.proc.start_ticks != 0 && st.start_ticks != r.proc.start_ticks) continue;  // reused
    const metrics::Labels l = {{"job_id", r.job_id},
                               {"generation", std::to_string(r.generation)},
                               {"rank", std::to_string(r.rank)},
                               {"local_rank", std::to_string(r.local_rank)}};
    page->Counter("coord_rank_cpu_seconds_total",
                  "User and system CPU time of a rank's process (all its threads), in seconds.", l,
                  static_cast<double>(st.utime_ticks + st.stime_ticks) / kTicks);
    page->Gauge("coord_rank_resident_memory_bytes",
                "Resident memory of a rank's process, in bytes.", l,
                static_cast<double>(st.rss_pages) * kPage);
  }
}

}  // namespace coord::agent
