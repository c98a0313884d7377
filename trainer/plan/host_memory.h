// Before a rank allocates anything: does what `gpt-rank plan` says it needs fit in the
// memory this node can give it? The limits that apply to a process here, the
// tightest first: RLIMIT_AS (its address space), the memory.max of its cgroup (v2) and
// the node's MemAvailable, which the node's ranks share. A config that cannot fit is
// then a clear error naming the limit, the plan's figure and what to change, instead
// of std::bad_alloc or the OOM killer halfway through the first step.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::plan {

struct HostMemoryLimits {
  double address_space = 0;  // RLIMIT_AS of this process; 0: unlimited
  double cgroup = 0;         // memory.max - memory.current of its cgroup; 0: none
  double available = 0;      // MemAvailable of the node; 0: unknown
};

// Read from getrlimit, /proc/self/cgroup + the cgroup2 mount, /proc/meminfo.
HostMemoryLimits ReadHostMemoryLimits();

// OK when this rank's plan (CPU backend: its buffers; CUDA: its offload buffers) fits
// every limit, with the node's `local_ranks` ranks sharing MemAvailable and the
// cgroup. ResourceExhausted otherwise, naming the limit, the figures and what to change.
coord::Status CheckHostMemory(const train::TrainerConfig& config, int local_ranks,
                              const HostMemoryLimits& limits);

}  // namespace gpt_rank::plan
