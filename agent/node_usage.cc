// SampleNodeUsage (see node_usage.h).
#include "agent/node_usage.h"

#include <unistd.h>

#include "agent/node_metrics.h"
#include "agent/proc_scan.h"

namespace coord::agent {

NodeUsage SampleNodeUsage(const std::string& proc_root, GpuMetrics* gpus) {
  NodeUsage u;
  std::string text;
  static const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (ReadProcFile(proc_root + "/stat", &text, 4 << 20)) {
    double busy = 0, total = 0;
    for (const CpuTimes& c : ParseCpuTimes(text, kTicks)) {
      const double idle = c.idle + c.iowait;
      const double all =
          c.user + c.nice + c.system + c.idle + c.iowait + c.irq + c.softirq + c.steal;
      busy += all - idle;
      total += all;
    }
    u.set_cpu_busy_s(busy);
    u.set_cpu_total_s(total);
  }
  if (ReadProcFile(proc_root + "/meminfo", &text, 1 << 20)) {
    for (const MeminfoField& f : ParseMeminfo(text)) {
      if (f.name == "MemTotal_bytes") u.set_mem_total_bytes(static_cast<uint64_t>(f.value));
      if (f.name == "MemAvailable_bytes") u.set_mem_available_bytes(static_cast<uint64_t>(f.value));
    }
  }
  if (ReadProcFile(proc_root + "/net/dev", &text, 4 << 20)) {
    for (const NetDevCounters& d : ParseNetDev(text)) {
      if (d.device == "lo") continue;  // loopback is not the node's network
      u.set_net_rx_bytes(u.net_rx_bytes() + d.rx_bytes);
      u.set_net_tx_bytes(u.net_tx_bytes() + d.tx_bytes);
    }
  }
  if (gpus != nullptr) gpus->Sample(&u);
  return u;
}

}  // namespace coord::agent
