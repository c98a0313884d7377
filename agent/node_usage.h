// The node's usage for coordd's status page: the counters a heartbeat carries every few
// seconds (agent --usage-ms) as NodeUsage (agent.proto): CPU busy/total seconds, memory
// total/available, network bytes (every interface but lo), and per GPU its utilisation,
// memory and power. coordd keeps the series (coordinator/job_history.h), so the page
// charts every node of a job without a Prometheus. Read from /proc with node_metrics.h's
// parsers and from NVML through GpuMetrics; runs on a Watch stream's thread.
#pragma once

#include <string>

#include "agent/gpu_metrics.h"
#include "proto/agent.pb.h"

namespace coord::agent {

// The node's counters under `proc_root` ("/proc"); GPUs from `gpus` when not null. A file
// that cannot be read leaves its fields at 0.
NodeUsage SampleNodeUsage(const std::string& proc_root, GpuMetrics* gpus);

}  // namespace coord::agent
