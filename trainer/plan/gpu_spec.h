// The GPU node types `gpt-rank plan` knows: one table row per type, with the figures
// the memory and time plans use (device memory, dense 16-bit peak, NVLink, PCIe,
// the node's network and host memory). Sources for every figure: docs/plan.md.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace gpt_rank::plan {

struct GpuSpec {
  const char* name;         // --gpu value, e.g. "v100-32gb"
  const char* node;         // the reference node the per-node figures come from
  double memory_bytes;      // device memory
  double hbm_bytes_s;       // device memory bandwidth, bytes/s (the memory-bound ops' roof)
  double peak_flops_16bit;  // dense fp16/bf16 tensor-core peak, FLOP/s
  double peak_flops_fp32;   // dense fp32 (no TF32), FLOP/s
  double nvlink_bytes_s;    // NVLink per GPU, one direction, bytes/s
  double pcie_bytes_s;      // host <-> device per GPU, one direction, bytes/s
  double node_network_bytes_s;  // all NICs of a node together, one direction, bytes/s
  double host_memory_bytes;     // host memory of the reference node
  double host_memory_bytes_s;   // host memory bandwidth of the node (theoretical), bytes/s
  int gpus_per_node;            // of the reference node
  bool bf16;                    // has bf16 tensor cores
};

const std::vector<GpuSpec>& GpuSpecs();
// The row named `name`; InvalidArgument listing the known names otherwise.
coord::StatusOr<GpuSpec> FindGpuSpec(const std::string& name);

}  // namespace gpt_rank::plan
