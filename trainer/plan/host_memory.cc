// The host-memory check before training (see host_memory.h).
#include "trainer/plan/host_memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "trainer/plan/gpu_spec.h"
#include "trainer/plan/plan.h"

namespace gpt_rank::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Code, libraries, thread stacks and allocator slack beyond the planned buffers.
constexpr double kProcessOverhead = 512.0 * 1024 * 1024;

double ReadNumber(const std::string& path) {
  auto text = coord::ReadFile(path);
  if (!text.ok()) return 0;
  if (text->rfind("max", 0) == 0) return 0;  // cgroup "max": no limit
  return std::strtod(text->c_str(), nullptr);
}

// The cgroup2 directory of this process ("0::/path" in /proc/self/cgroup).
std::string OwnCgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string rel = line.substr(3);
    for (const char* mount : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      const std::string dir = std::string(mount) + rel;
      if (coord::PathExists(dir + "/memory.max")) return dir;
    }
  }
  return "";
}

std::string GiB(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / kGiB);
  return buf;
}

}  // namespace

HostMemoryLimits ReadHostMemoryLimits() {
  HostMemoryLimits l;
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    l.address_space = static_cast<double>(as.rlim_cur);
  }
  if (const std::string dir = OwnCgroupDir(); !dir.empty()) {
    const double max = ReadNumber(dir + "/memory.max");
    if (max > 0) l.cgroup = std::max(0.0, max - ReadNumber(dir + "/memory.current"));
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") l.available = kib * 1024.0;
  }
  return l;
}

coord::Status CheckHostMemory(const train::TrainerConfig& c, int local_ranks,
                              const HostMemoryLimits& limits) {
  const bool cpu = c.training.device == "cpu";
  ClusterShape cluster;
  cluster.gpus_per_node = std::max(1, local_ranks);
  cluster.nodes = std::max(1, c.parallel.world_size / cluster.gpus_per_node);
  auto gpu = FindGpuSpec("h100-80gb");  // only the host figures are read here
  if (!gpu.ok()) return gpu.status();
  const RankMemory r = PlanWorstStageMemory(c, cluster, *gpu);  // any stage may run here
  const double rank = cpu ? r.device_total : r.host_total;
  if (rank <= 0) return coord::Status::Ok();
  const double node = rank * cluster.gpus_per_node;
  const std::string what =
      std::string(cpu ? "this rank's buffers (CPU backend: parameters, gradients, Adam state, "
                        "activations)"
                      : "this rank's host buffers (offloaded optimizer / parameters, CPU "
                        "checkpoints)") +
      " need " + GiB(rank) + " by gpt-rank plan's count";
  const std::string change =
      "; lower training.micro_batch_size, turn on model.checkpoint_activations, raise "
      "zero_optimization.stage or parallel.tensor_model_parallel_size, or run fewer ranks per "
      "node (gpt-rank plan --config " + c.source_path + " shows the whole table)";
  if (limits.address_space > 0 && rank + kProcessOverhead > limits.address_space) {
    return coord::ResourceExhausted(c.source_path + ": " + what + " (+ " + GiB(kProcessOverhead) +
                                    " for the process) but its address space is limited to " +
                                    GiB(limits.address_space) + " (RLIMIT_AS, ulimit -v)" + change);
  }
  if (limits.cgroup > 0 && node > limits.cgroup) {
    return coord::ResourceExhausted(
        c.source_path + ": " + what + ", " + GiB(node) + " for the " +
        std::to_string(cluster.gpus_per_node) + " rank(s) of this node, but its cgroup allows " +
        GiB(limits.cgroup) + " more (memory.max)" + change);
  }
  if (limits.available > 0 && node > limits.available) {
    return coord::ResourceExhausted(
        c.source_path + ": " + what + ", " + GiB(node) + " for the " +
        std::to_string(cluster.gpus_per_node) + " rank(s) of this node, but only " +
        GiB(limits.available) + " is available (MemAvailable in /proc/meminfo)" + change);
  }
  return coord::Status::Ok();
}

}  // namespace gpt_rank::plan
