// The GPU table (see gpu_spec.h; sources in docs/plan.md). Peak figures are the
// vendors' datasheet numbers; the plan applies its stated efficiencies to them.
#include "trainer/plan/gpu_spec.h"

namespace gpt_rank::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kGB = 1e9;
constexpr double kT = 1e12;
constexpr double kGbit = 1e9 / 8.0;  // bytes/s of one Gb/s

// name, node, memory, HBM bandwidth, fp16/bf16 dense, fp32, NVLink/dir, PCIe/dir,
// node network, host memory, host memory bandwidth, GPUs per node, bf16
const std::vector<GpuSpec> kSpecs = {
    {"v100-32gb", "8x V100 SXM2 32GB (DGX-1V class, NVLink 2), one 100 Gb/s NIC per node",
     32 * kGiB, 900 * kGB, 125 * kT, 15.7 * kT, 150 * kGB, 16 * kGB, 100 * kGbit, 512 * kGiB,
     153.6 * kGB, 8, false},
    {"a100-40gb", "DGX A100 (8x A100 SXM4 40GB, NVLink 3, 8x 200Gb/s HDR)", 40 * kGiB, 1555 * kGB,
     312 * kT, 19.5 * kT, 300 * kGB, 32 * kGB, 8 * 200 * kGbit, 1024 * kGiB, 409.6 * kGB, 8, true},
    {"a100-80gb", "DGX A100 80GB (8x A100 SXM4 80GB, NVLink 3, 8x 200Gb/s HDR)", 80 * kGiB,
     2039 * kGB, 312 * kT, 19.5 * kT, 300 * kGB, 32 * kGB, 8 * 200 * kGbit, 2048 * kGiB,
     409.6 * kGB, 8, true},
    {"h100-80gb", "DGX H100 (8x H100 SXM5 80GB, NVLink 4, 8x 400Gb/s NDR)", 80 * kGiB, 3350 * kGB,
     989 * kT, 67 * kT, 450 * kGB, 64 * kGB, 8 * 400 * kGbit, 2048 * kGiB, 614.4 * kGB, 8, true},
};

}  // namespace

const std::vector<GpuSpec>& GpuSpecs() { return kSpecs; }

coord::StatusOr<GpuSpec> FindGpuSpec(const std::string& name) {
  std::string known;
  for (const GpuSpec& s : kSpecs) {
    if (name == s.name) return s;
    known += (known.empty() ? "" : ", ") + std::string(s.name);
  }
  return coord::InvalidArgument("--gpu " + name + ": unknown GPU; expected one of " + known);
}

}  // namespace gpt_rank::plan
